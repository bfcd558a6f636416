//! EST load generator (`est-load`) used by `benches/est.sh`.
//!
//! Each of `--concurrency` workers opens one TLS connection (HTTP/1.1, kept alive, TCP_NODELAY)
//! authenticated by a client certificate or sending HTTP Basic credentials, and POSTs
//! pre-generated base64 PKCS#10 requests to `/simpleenroll` back to back for `--seconds`.
//! Prints one JSON object: enrollments completed and failed, enrollments/s, p50/p99 latency and,
//! with `--server-pid`, the server's CPU time per enrollment (USER_HZ = 100 ticks/s).

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use base64ct::{Base64, Encoding};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Request};
use hyper_util::rt::TokioIo;
use privca_load::{cpu_seconds, quantile_ms, BoxError};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};

#[derive(Parser)]
#[command(about = "EST simpleenroll load generator")]
struct Args {
    /// `https://host:port/.well-known/est[/label]/simpleenroll`.
    #[arg(long)]
    url: String,
    /// PEM the server's TLS chain verifies against.
    #[arg(long)]
    root: PathBuf,
    /// Client certificate (PEM) for TLS client authentication.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// HTTP Basic `user:password` instead of (or besides) a client certificate.
    #[arg(long)]
    basic: Option<String>,
    /// Directory of base64 PKCS#10 files (`*.b64`), sent round-robin.
    #[arg(long)]
    csrs: PathBuf,
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
        eprintln!("est-load: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.root)? {
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
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let uri: hyper::Uri = args.url.parse()?;
    let host = uri.host().ok_or("the URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let authorization = args.basic.as_ref().map(|b| format!("Basic {}", Base64::encode_string(b.as_bytes())));
    let mut csrs = Vec::new();
    for entry in std::fs::read_dir(&args.csrs)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "b64") {
            csrs.push(Bytes::from(std::fs::read(path)?));
        }
    }
    if csrs.is_empty() {
        return Err("no *.b64 CSRs in --csrs".into());
    }
    let csrs = Arc::new(csrs);

    let cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (connector, host, uri, csrs, authorization) =
            (connector.clone(), host.clone(), uri.clone(), csrs.clone(), authorization.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            let mut last_error = None;
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let stream = connector.connect(ServerName::try_from(host.clone())?, tcp).await?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut i = w;
            while Instant::now() < deadline {
                let mut req = Request::post(uri.clone())
                    .header("host", host.as_str())
                    .header("content-type", "application/pkcs10");
                if let Some(a) = &authorization {
                    req = req.header("authorization", a.as_str());
                }
                let req = req.body(Full::new(csrs[i % csrs.len()].clone()))?;
                i += 1;
                let t0 = Instant::now();
                let response = sender.send_request(req).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                if status == 200 && !body.is_empty() {
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
            eprintln!("est-load: a request failed: {e}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (args.server_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };
    latencies.sort();
    let ok = latencies.len();
    let report = serde_json::json!({
        "label": args.label,
        "concurrency": args.concurrency,
        "ok": ok,
        "failed": failed,
        "seconds": elapsed,
        "per_s": ok as f64 / elapsed,
        "p50_ms": quantile_ms(&latencies, 0.50),
        "p99_ms": quantile_ms(&latencies, 0.99),
        "server_cpu_ms_per_op": cpu.filter(|_| ok > 0).map(|c| c * 1000.0 / ok as f64),
    });
    println!("{report}");
    Ok(())
}
