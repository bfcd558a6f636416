//! Loopback TLS endpoints for `benches/discover.sh` (`tls-targets`): listens on `--ports`
//! consecutive ports from `--first-port`, completes a TLS handshake (rustls, ring) with the
//! given chain and key on each connection, reads until the client closes, and prints `ready`
//! once every port listens. A failed handshake still sends its alert, which nmap's SSL
//! detection needs. Runs until killed.

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::Parser;
use privca_load::BoxError;
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::io::AsyncReadExt;

#[derive(Parser)]
#[command(about = "Loopback TLS endpoints for the discovery benchmark")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// First port.
    #[arg(long)]
    first_port: u16,
    /// Number of consecutive ports.
    #[arg(long)]
    ports: u16,
    /// Certificate chain (PEM, leaf first).
    #[arg(long)]
    cert: PathBuf,
    /// Private key (PEM).
    #[arg(long)]
    key: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let chain = CertificateDer::pem_file_iter(&args.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.key)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let last = args.first_port.checked_add(args.ports.saturating_sub(1)).ok_or("port range past 65535")?;
    for port in args.first_port..=last {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), port)).await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let session = async {
                        let mut tls = acceptor.accept(stream).await?;
                        let mut buf = [0u8; 4096];
                        while tls.read(&mut buf).await? > 0 {}
                        Ok::<_, std::io::Error>(())
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(10), session).await;
                });
            }
        });
    }
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}
