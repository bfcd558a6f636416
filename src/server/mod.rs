//! `privca serve`: bind the listeners, run the background jobs, shut down gracefully.
//!
//! Three listeners: plain HTTP (relying parties: AIA, later CRL/OCSP/SCEP), HTTPS (enrollment
//! protocols) and the admin listener (HTTPS). On SIGTERM or SIGINT the listeners stop
//! accepting, in-flight requests get `server.shutdown_grace` to finish, the audit log is sealed
//! one last time and the ledger is closed (by the caller).

pub mod routes;
pub mod tls;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};
use tokio_rustls::TlsAcceptor;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer, trace::TraceLayer};

use crate::{app::App, error::CaError};

/// Largest request body any endpoint accepts.
const MAX_BODY: usize = 1 << 20;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs the global tracing subscriber (human or JSON lines on stderr). `RUST_LOG` wins
/// over `default_filter`.
pub fn init_tracing(json: bool, default_filter: &str) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // cryptoki logs every vendor mechanism it has no name for at ERROR while listing them.
    if let Ok(quiet) = "cryptoki::mechanism=off".parse() {
        filter = filter.add_directive(quiet);
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Runs the servers until SIGTERM/SIGINT.
pub async fn serve(app: App) -> Result<(), CaError> {
    let metrics = crate::metrics::install();
    let report = app.bootstrap(false).await?;
    let (feed, changes) = crate::ca::changes::ChangeFeed::channel();
    let ca = app.ca().await?.with_change_feed(feed);
    let chain = tls::server_chain(&ca).await?;
    let ocsp = crate::ca::ocsp::OcspService::start(ca.clone()).await?;
    let acme = crate::adapters::acme::state(&ca).await?;
    let acme_enabled = acme.is_some();
    let (est, client_roots) = match crate::adapters::est::settings(&ca)? {
        Some(settings) => {
            let (roots, bootstrap) = tls::client_trust(&ca)?;
            (Some((crate::adapters::est::EstAdapter::new(ca.clone(), bootstrap)?, settings)), Some(roots))
        }
        None => (None, None),
    };
    let est_enabled = est.is_some();
    let scep = crate::adapters::scep::state(&ca).await?;
    let scep_enabled = scep.is_some();
    let scep_adapter = scep.as_ref().map(|(adapter, _)| adapter.clone());
    app.seal().await;
    // Client certificates are asked for (optionally) on the enrollment listener only.
    let admin_tls = TlsAcceptor::from(Arc::new(tls::server_config(&ca, chain.clone(), None)?));
    let tls = TlsAcceptor::from(Arc::new(tls::server_config(&ca, chain, client_roots)?));
    let cfg = &app.config.server;
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|e| CaError::internal(format!("cannot listen on {addr}")).with_source(e))
    };
    let http = bind(cfg.http_listen).await?;
    let https = bind(cfg.https_listen).await?;
    let admin = bind(cfg.admin_listen).await?;
    let layered = |router: Router| {
        router
            .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, cfg.request_timeout))
            .layer(RequestBodyLimitLayer::new(MAX_BODY))
            .layer(TraceLayer::new_for_http())
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let grace = cfg.shutdown_grace;
    let listeners = vec![
        tokio::spawn(run_listener(
            http,
            None,
            layered(routes::http(ca.clone(), ocsp.clone(), scep)),
            stop_rx.clone(),
            grace,
        )),
        tokio::spawn(run_listener(
            https,
            Some(tls.clone()),
            layered(routes::https(ca.clone(), acme, est)),
            stop_rx.clone(),
            grace,
        )),
        tokio::spawn(run_listener(
            admin,
            Some(admin_tls),
            layered(routes::admin(ca.clone(), metrics)),
            stop_rx.clone(),
            grace,
        )),
    ];
    let jobs = crate::jobs::spawn(&app, &ca, &ocsp, scep_adapter, changes, stop_rx.clone());
    let urls = &app.config.urls;
    println!("privca is serving");
    println!("  HTTPS:      {}/healthz", urls.https_base);
    println!("  HTTP:       {}/healthz  (CA certificates under {}/ca/)", urls.http_base, urls.http_base);
    println!("  admin:      https://{}/healthz, /metrics", cfg.admin_listen);
    if acme_enabled {
        println!("  ACME directory: {}", crate::ca::chain::acme_directory_url(urls));
    }
    if scep_enabled {
        println!("  SCEP:       {}{}?operation=GetCACaps", urls.http_base.trim_end_matches('/'), routes::SCEP_PREFIX);
    }
    if est_enabled {
        println!("  EST:        {}{}/cacerts", urls.https_base.trim_end_matches('/'), routes::EST_PREFIX);
    }
    println!("  root CA:    {}", report.root_pem.display());
    tracing::info!(http = %cfg.http_listen, https = %cfg.https_listen, admin = %cfg.admin_listen, "listening");
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for task in listeners.into_iter().chain(jobs) {
        let _ = task.await;
    }
    // The caller seals the audit log one last time and closes the ledger.
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

async fn run_listener(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        // Responses are written in one go; without TCP_NODELAY a client that delays ACKs
        // would add ~40 ms (Nagle) to every request on a kept-alive connection.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let router = router.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        match tls.clone() {
            Some(acceptor) => {
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    // A verified client certificate chain (EST) travels with every request of the
                    // connection.
                    let chain = stream.get_ref().1.peer_certificates().map(|certs| {
                        privca_est::auth::TlsClientChain(Arc::new(certs.iter().map(|c| c.to_vec()).collect()))
                    });
                    let service = TowerToHyperService::new(tower::ServiceExt::map_request(
                        router,
                        move |mut req: axum::http::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(ConnectInfo(peer));
                            if let Some(chain) = &chain {
                                req.extensions_mut().insert(chain.clone());
                            }
                            req
                        },
                    ));
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
            None => {
                tokio::spawn(async move {
                    let service = TowerToHyperService::new(tower::ServiceExt::map_request(
                        router,
                        move |mut req: axum::http::Request<hyper::body::Incoming>| {
                            // The client's address, for per-address limits (SCEP envelopes).
                            req.extensions_mut().insert(ConnectInfo(peer));
                            req
                        },
                    ));
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("grace period over; closing remaining connections");
    }
}
