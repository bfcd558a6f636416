//! ACME load generator (`acme-load`) used by `benches/acme.sh`.
//!
//! Registers one account, then runs full RFC 8555 flows at a fixed concurrency for a fixed time:
//! newOrder → fetch the authorization → answer http-01 from a built-in responder (or nothing,
//! when the server skips validation) → poll until ready → finalize with a fresh P-256 CSR →
//! poll until valid → download the chain. The same client and polling policy run against
//! privca and pebble, so the comparison is like with like. Every order has a timeout; the
//! report counts completed and failed orders separately.
//!
//! Prints one JSON object: orders completed and failed, orders/s, p50/p99 latency of a whole
//! order, and, with `--server-pid`, the server's CPU time (utime + stime from
//! `/proc/<pid>/stat`, in USER_HZ = 100 ticks/s on Linux) over the measured window.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{extract::Path, extract::State, http::StatusCode, routing::get, Router};
use clap::{Parser, ValueEnum};
use instant_acme::{Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus};
use privca_load::{cpu_seconds, report, BoxError};

#[derive(Parser)]
#[command(about = "ACME load generator: full flows at a fixed concurrency")]
struct Args {
    /// ACME directory URL.
    #[arg(long)]
    directory: String,
    /// PEM certificate the server's TLS chain verifies against.
    #[arg(long)]
    root: PathBuf,
    /// Orders in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// How long to keep starting orders.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Give up on an order after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    order_timeout: f64,
    /// How authorizations get valid.
    #[arg(long, value_enum, default_value_t = Validation::Http01)]
    validation: Validation,
    /// Where the http-01 responder listens (the server's VA dials this port).
    #[arg(long, default_value = "127.0.0.1:5002")]
    http01_listen: SocketAddr,
    /// Identifiers are `o<N>.<suffix>`; the server's resolver must map them to 127.0.0.1.
    #[arg(long, default_value = "load.bench.test")]
    domain_suffix: String,
    /// Server process whose CPU time is reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Label copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Validation {
    /// Answer http-01 challenges from the built-in responder.
    Http01,
    /// Trigger the http-01 challenge without serving it (server configured to skip validation).
    None,
}

type Tokens = Arc<Mutex<HashMap<String, String>>>;

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("acme-load: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tokens: Tokens = Arc::default();
    if args.validation == Validation::Http01 {
        let listener = tokio::net::TcpListener::bind(args.http01_listen).await?;
        let app =
            Router::new().route("/.well-known/acme-challenge/{token}", get(serve_token)).with_state(tokens.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    let (account, _) = Account::builder_with_root(&args.root)?
        .create(
            &NewAccount { contact: &[], terms_of_service_agreed: true, only_return_existing: false },
            args.directory.clone(),
            None,
        )
        .await?;
    let account = Arc::new(account);

    let cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let order_timeout = Duration::from_secs_f64(args.order_timeout);
    let next_id = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let (account, tokens, next_id) = (account.clone(), tokens.clone(), next_id.clone());
        let (suffix, validation) = (args.domain_suffix.clone(), args.validation);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            while Instant::now() < deadline {
                let name = format!("o{}.{suffix}", next_id.fetch_add(1, Ordering::Relaxed));
                let t0 = Instant::now();
                match tokio::time::timeout(order_timeout, one_order(&account, &tokens, &name, validation)).await {
                    Ok(Ok(())) => latencies.push(t0.elapsed()),
                    Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                    Err(_) => failures.push(format!("{name}: timed out")),
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for w in workers {
        let (l, f) = w.await?;
        latencies.extend(l);
        failures.extend(f);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (args.server_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };

    for f in failures.iter().take(5) {
        eprintln!("acme-load: failed order {f}");
    }
    println!("{}", report(&args.label, args.concurrency, latencies, failures.len(), elapsed, cpu));
    Ok(())
}

/// One full flow for one DNS name.
async fn one_order(account: &Account, tokens: &Tokens, name: &str, validation: Validation) -> Result<(), BoxError> {
    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    let mut token = None;
    {
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            let mut challenge = authz.challenge(ChallengeType::Http01).ok_or("no http-01 challenge offered")?;
            if validation == Validation::Http01 {
                let key_authz = challenge.key_authorization().as_str().to_owned();
                lock(tokens).insert(challenge.token.clone(), key_authz);
                token = Some(challenge.token.clone());
            }
            challenge.set_ready().await?;
        }
    }
    let ready = wait_for(&mut order, |s| matches!(s, OrderStatus::Ready | OrderStatus::Invalid)).await;
    if let Some(t) = token {
        lock(tokens).remove(&t);
    }
    if ready? != OrderStatus::Ready {
        return Err("order became invalid during validation".into());
    }
    order.finalize().await?;
    if wait_for(&mut order, |s| matches!(s, OrderStatus::Valid | OrderStatus::Invalid)).await? != OrderStatus::Valid {
        return Err("order became invalid after finalize".into());
    }
    let chain = order.certificate().await?.ok_or("no certificate")?;
    if !chain.contains("-----BEGIN CERTIFICATE-----") {
        return Err("download is not a PEM chain".into());
    }
    Ok(())
}

/// Polls the order (POST-as-GET) with the same short backoff for every server, ignoring
/// Retry-After: a whole-second hint would dominate latency and differ between servers.
async fn wait_for(
    order: &mut instant_acme::Order,
    done: impl Fn(OrderStatus) -> bool,
) -> Result<OrderStatus, instant_acme::Error> {
    let mut delay = Duration::from_millis(5);
    loop {
        let status = order.state().status;
        if done(status) {
            return Ok(status);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_millis(200));
        order.refresh().await?;
    }
}

async fn serve_token(State(tokens): State<Tokens>, Path(token): Path<String>) -> Result<String, StatusCode> {
    lock(&tokens).get(&token).cloned().ok_or(StatusCode::NOT_FOUND)
}

fn lock(tokens: &Tokens) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
    tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
