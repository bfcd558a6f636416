//! POST load generator (`post-load`) used by `benches/est.sh`, `benches/scep.sh` and
//! `benches/issue.sh`.
//!
//! Each of `--concurrency` workers opens one connection (HTTP/1.1, kept alive, TCP_NODELAY;
//! TLS for `https://` URLs, optionally with a client certificate) and POSTs pre-generated bodies
//! (every file in `--bodies`, sent as they are) back to back for `--seconds`, round-robin, or
//! each body once with `--once` (SCEP requests carry unique transaction IDs), with optional
//! extra headers (`--header`, e.g. an API token). A request counts when the answer is 200 or 201
//! (created) with a body. Prints one JSON object: requests completed and failed, requests/s,
//! p50/p99 latency and, with `--server-pid`, the server's CPU time per request.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use base64ct::{Base64, Encoding};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Request};
use hyper_util::rt::TokioIo;
use privca_load::{cpu_seconds, report, BoxError};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};

#[derive(Parser)]
#[command(about = "POST load generator")]
struct Args {
    /// Target URL (`http://` or `https://`).
    #[arg(long)]
    url: String,
    /// PEM the server's TLS chain verifies against (`https://`).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Client certificate (PEM) for TLS client authentication.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// HTTP Basic `user:password` instead of (or besides) a client certificate.
    #[arg(long)]
    basic: Option<String>,
    /// Extra request header `Name: value` (repeatable), e.g. a bearer token.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Directory whose files are the request bodies.
    #[arg(long)]
    bodies: PathBuf,
    /// Content-Type of the requests.
    #[arg(long, default_value = "application/pkcs10")]
    content_type: String,
    /// Send each body at most once (stop early when they run out).
    #[arg(long)]
    once: bool,
    /// Connections, each with one request in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Duration of the run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Server process whose CPU time is reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Label copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("post-load: {e}");
        std::process::exit(1);
    }
}

/// One kept-alive HTTP/1.1 connection, plain or TLS.
async fn connect(
    host: &str,
    port: u16,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, BoxError> {
    let tcp = tokio::net::TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(match tls {
        Some(connector) => {
            let stream = connector.connect(ServerName::try_from(host.to_owned())?, tcp).await?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            sender
        }
        None => {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            sender
        }
    })
}

fn tls_connector(args: &Args) -> Result<tokio_rustls::TlsConnector, BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(args.root.as_ref().ok_or("https:// needs --root")?)? {
        roots.add(cert?)?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls)))
}

async fn run(args: Args) -> Result<(), BoxError> {
    let uri: hyper::Uri = args.url.parse()?;
    let https = uri.scheme_str() == Some("https");
    let tls = if https { Some(tls_connector(&args)?) } else { None };
    let host = uri.host().ok_or("the URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authorization = args.basic.as_ref().map(|b| format!("Basic {}", Base64::encode_string(b.as_bytes())));
    let headers = args
        .headers
        .iter()
        .map(|h| h.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())))
        .collect::<Option<Vec<_>>>()
        .ok_or("--header takes `Name: value`")?;
    let headers = Arc::new(headers);
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&args.bodies)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    paths.sort();
    let bodies = paths.iter().map(|p| std::fs::read(p).map(Bytes::from)).collect::<Result<Vec<_>, _>>()?;
    if bodies.is_empty() {
        return Err("no request bodies in --bodies".into());
    }
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));

    let cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (tls, host, uri, bodies, next, authorization, headers) = (
            tls.clone(),
            host.clone(),
            uri.clone(),
            bodies.clone(),
            next.clone(),
            authorization.clone(),
            headers.clone(),
        );
        let (content_type, once) = (args.content_type.clone(), args.once);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut last_error = None;
            let mut sender = connect(&host, port, tls.as_ref()).await?;
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if once && i >= bodies.len() {
                    break;
                }
                let mut req = Request::post(uri.clone())
                    .header("host", host.as_str())
                    .header("content-type", content_type.as_str());
                if let Some(a) = &authorization {
                    req = req.header("authorization", a.as_str());
                }
                for (name, value) in headers.iter() {
                    req = req.header(name.as_str(), value.as_str());
                }
                let req = req.body(Full::new(bodies[i % bodies.len()].clone()))?;
                let t0 = Instant::now();
                let response = sender.send_request(req).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                if (status == 200 || status == 201) && !body.is_empty() {
                    latencies.push(t0.elapsed());
                } else {
                    failures += 1;
                    last_error = Some(format!("{status}: {}", String::from_utf8_lossy(&body).trim()));
                }
            }
            Ok::<_, BoxError>((latencies, failures, last_error))
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (l, f, e) = w.await??;
        latencies.extend(l);
        failed += f;
        if let Some(e) = e {
            eprintln!("post-load: a request failed: {e}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (args.server_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };
    println!("{}", report(&args.label, args.concurrency, latencies, failed, elapsed, cpu));
    Ok(())
}
