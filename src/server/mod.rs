//! `privca serve`: bind the listeners, run the background jobs, shut down gracefully.
//!
//! Three listeners: plain HTTP (relying parties: AIA, CRL, OCSP, SCEP), HTTPS (ACME, EST) and
//! the admin listener (HTTPS). Each runs [`listener::run`] under the same limits (connection
//! cap, TLS handshake, header read, idle and whole-request timeouts, body size); at start-up
//! the soft open-file limit is raised to the hard one and the connection cap checked against
//! it (or derived from it). On SIGTERM or SIGINT the listeners stop accepting, in-flight
//! requests get `server.shutdown_grace` to finish, the audit log is sealed one last time and
//! the ledger is closed (by the caller).

pub mod client_auth;
pub mod listener;
pub mod routes;
pub mod tls;

use std::{net::SocketAddr, sync::Arc};

use axum::Router;
use tokio::{net::TcpListener, sync::watch};
use tokio_rustls::TlsAcceptor;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer, trace::TraceLayer};

use crate::{app::App, error::CaError};

/// Largest request body any endpoint accepts.
const MAX_BODY: usize = 1 << 20;

/// The whole-request deadline, body size limit and request tracing every listener's router
/// gets: a request that is not answered within `request_timeout` (reading its body included)
/// gets 408.
pub fn layered(router: Router, request_timeout: std::time::Duration) -> Router {
    router
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, request_timeout))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(TraceLayer::new_for_http())
}

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
    app.signing.publish_metrics();
    let nofile = listener::raise_open_file_limit();
    let cap = listener::connection_cap(app.config.server.max_connections, nofile)?;
    let report = app.bootstrap(false).await?;
    let (feed, changes) = crate::ca::changes::ChangeFeed::channel();
    let ca = app.ca().await?.with_change_feed(feed);
    let server_cert = tls::ServerCert::load(&ca).await?;
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
    // Client certificates are asked for (optionally) on the enrollment listener, and on the
    // admin listener when `[admin] client_ca` is set.
    let admin_tls =
        TlsAcceptor::from(Arc::new(tls::admin_server_config(&server_cert, app.config.admin.client_auth.as_ref())?));
    let tls = TlsAcceptor::from(Arc::new(tls::server_config(&server_cert, client_roots)?));
    let cfg = &app.config.server;
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|e| CaError::internal(format!("cannot listen on {addr}")).with_source(e))
    };
    let http = bind(cfg.http_listen).await?;
    let https = bind(cfg.https_listen).await?;
    let admin = bind(cfg.admin_listen).await?;
    let limits = listener::Limits::new(cfg, cap);
    let (stop_tx, stop_rx) = watch::channel(false);
    let listeners = vec![
        tokio::spawn(listener::run(
            "http",
            http,
            None,
            layered(routes::http(ca.clone(), ocsp.clone(), scep), cfg.request_timeout),
            limits.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(listener::run(
            "https",
            https,
            Some(tls),
            layered(routes::https(ca.clone(), acme, est), cfg.request_timeout),
            limits.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(listener::run(
            "admin",
            admin,
            Some(admin_tls),
            layered(routes::admin(ca.clone(), metrics), cfg.request_timeout),
            limits,
            stop_rx.clone(),
        )),
    ];
    let mut jobs = crate::jobs::spawn(&app, &ca, &ocsp, scep_adapter, changes, stop_rx.clone()).await;
    jobs.push(tokio::spawn(crate::jobs::tls_refresh(server_cert, stop_rx.clone())));
    let urls = &app.config.urls;
    println!("privca is serving");
    println!("  HTTPS:      {}/healthz", urls.https_base);
    println!("  HTTP:       {}/healthz  (CA certificates under {}/ca/)", urls.http_base, urls.http_base);
    println!("  admin:      https://{}/healthz, /metrics, /api/v1/", cfg.admin_listen);
    match app.ledger.has_admin_users().await {
        Ok(false) => println!("  no admin user yet: `privca admin user add NAME --role admin` creates the first one"),
        Ok(true) => {}
        Err(e) => tracing::warn!(error = %e, "cannot count admin users"),
    }
    if acme_enabled {
        println!("  ACME directory: {}", crate::ca::chain::acme_directory_url(urls));
    }
    if scep_enabled {
        println!(
            "  SCEP:       {}{}?operation=GetCACaps",
            urls.http_base.trim_end_matches('/'),
            crate::paths::SCEP_PREFIX
        );
    }
    if est_enabled {
        println!("  EST:        {}{}/cacerts", urls.https_base.trim_end_matches('/'), crate::paths::EST_PREFIX);
    }
    println!("  root CA:    {}", report.root_pem.display());
    tracing::info!(
        http = %cfg.http_listen,
        https = %cfg.https_listen,
        admin = %cfg.admin_listen,
        max_connections = cap,
        open_file_limit = nofile,
        "listening"
    );
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
