//! privca's own TLS certificate is renewed while the server runs: an HTTPS listener
//! (`server::listener::run` with the `server::tls` configuration, as `serve` builds them)
//! serves certificate A; a refresh at a time past two thirds of A's lifetime issues B through
//! the issuance cycle (ledger row that names A as renewed, audit events), a new connection
//! gets B while a connection opened before keeps working, and nothing restarts.

use std::{sync::Arc, time::Duration};

use der::Decode;
use privca::server::{listener, routes, tls::ServerCert};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::harness::{both_databases, Db, TestCa};

type Client = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: std::net::SocketAddr, root: &[u8]) -> (Client, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(root.to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let cert = x509_cert::Certificate::from_der(&leaf).unwrap();
    (stream, hex::encode(cert.tbs_certificate.serial_number.as_bytes()))
}

async fn healthz(stream: &mut Client) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn renewed_while_serving(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let cert = ServerCert::load(&t.ca).await.unwrap();
    let first = cert.serial().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(privca::server::tls::server_config(&cert, None).unwrap()));
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let cfg = &t.app.config.server;
    let router = privca::server::layered(routes::https(t.ca.clone(), None, None), cfg.request_timeout);
    let (stop, stop_rx) = watch::channel(false);
    let server =
        tokio::spawn(listener::run("https", socket, Some(acceptor), router, listener::Limits::new(cfg, 64), stop_rx));
    let root = t.ca.root().unwrap().der.clone();

    let (mut old, served) = connect(addr, &root).await;
    assert_eq!(served, first);
    assert!(healthz(&mut old).await.starts_with("HTTP/1.1 200"));

    // Now: more than a third of the 90-day lifetime left, nothing to do.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(!cert.refresh_at(now).await.unwrap());
    assert_eq!(cert.serial().unwrap(), first);
    // 61 days on: 29 of 90 days left.
    assert!(cert.refresh_at(now + 61 * 86_400).await.unwrap());
    let second = cert.serial().unwrap();
    assert_ne!(second, first);

    let (mut new, served) = connect(addr, &root).await;
    assert_eq!(served, second, "a new connection gets the reissued certificate");
    assert!(healthz(&mut new).await.starts_with("HTTP/1.1 200"));
    assert!(healthz(&mut old).await.starts_with("HTTP/1.1 200"), "the open connection keeps working");
    assert!(!server.is_finished());

    // Issued through the issuance cycle: in the ledger, renewing the first, and audited.
    let record = t.app.ledger.certificate(&second).await.unwrap().unwrap();
    assert_eq!(record.profile, "tls-server");
    assert_eq!(record.renews_serial.as_deref(), Some(first.as_str()));
    let mut rows = t.app.ledger.unsealed_audit(10_000).await.unwrap();
    rows.extend(t.app.ledger.sealed_audit(0, 10_000).await.unwrap());
    let events: Vec<&str> =
        rows.iter().filter(|r| r.serial.as_deref() == Some(second.as_str())).map(|r| r.event.as_str()).collect();
    assert!(events.contains(&"committed"), "audit events for the renewal: {events:?}");
    // The saved chain is the new one (a restart serves it).
    let saved = std::fs::read_to_string(t.dir.path().join("tls/server-chain.pem")).unwrap();
    assert!(saved.contains(&privca::ca::x509::pem(&record.der).trim().to_owned()));
    // And a restart takes it as it is.
    let again = ServerCert::load(&t.ca).await.unwrap();
    assert_eq!(again.serial().unwrap(), second);

    stop.send(true).unwrap();
    drop((old, new));
    tokio::time::timeout(Duration::from_secs(15), server).await.unwrap().unwrap();
}

both_databases!(renewed_while_serving);
