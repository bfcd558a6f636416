//! Connecting to targets and capturing what they serve: TCP with a connect timeout, the
//! optional STARTTLS opening, then a rustls handshake (ring provider) whose certificate
//! verifier accepts everything, so the served chain and the negotiated version are read from
//! the session whatever they are. When rustls cannot complete a handshake (TLS 1.0/1.1 only,
//! or suites rustls does not implement), a second connection runs the [`super::legacy`] probe.
//! At most `concurrency` targets are in flight (a semaphore).

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
    DigitallySignedStruct, SignatureScheme,
};
use tokio::{net::TcpStream, sync::Semaphore, task::JoinSet};

use super::{legacy, starttls::Starttls, DiscoverError, Target};

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Targets in flight at once.
    pub concurrency: usize,
    /// Per address: DNS resolution plus TCP connect.
    pub connect_timeout: Duration,
    /// Per connection: STARTTLS plus the TLS handshake.
    pub handshake_timeout: Duration,
    /// A plaintext opening before TLS.
    pub starttls: Option<Starttls>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            concurrency: 64,
            connect_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(5),
            starttls: None,
        }
    }
}

/// What an endpoint served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Negotiated protocol version (`TLSv1.3`, `TLSv1.2`, `TLSv1.1`, `TLSv1.0`, `SSLv3`).
    pub tls_version: String,
    /// The chain, leaf first, DER.
    pub chain: Vec<Vec<u8>>,
    /// Read by the legacy probe (rustls could not complete a handshake).
    pub legacy: bool,
    /// The address connected to.
    pub address: SocketAddr,
}

/// Accepts any certificate and any handshake signature: the scan records, it does not judge
/// (the findings do, afterwards).
#[derive(Debug)]
struct RecordingVerifier;

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ECDSA_NISTP521_SHA512,
            SignatureScheme::ED25519,
            SignatureScheme::ED448,
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PSS_SHA384,
            SignatureScheme::RSA_PSS_SHA512,
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::RSA_PKCS1_SHA384,
            SignatureScheme::RSA_PKCS1_SHA512,
            SignatureScheme::RSA_PKCS1_SHA1,
            SignatureScheme::ECDSA_SHA1_Legacy,
        ]
    }
}

/// The rustls client configuration of scans: ring, TLS 1.2 and 1.3, no verification.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, DiscoverError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(DiscoverError::Setup)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordingVerifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Scans `targets`, at most `options.concurrency` connections at once, and hands each result
/// to `then` (in the scan's task, once its connection is closed: recording one endpoint
/// overlaps with scanning the next ones); `done` is called with each outcome as it arrives.
/// Outcomes come back in the order of `targets`.
pub async fn scan_all<T, F, Fut>(
    targets: Vec<Target>,
    options: &ScanOptions,
    then: F,
    mut done: impl FnMut(&T),
) -> Result<Vec<(Target, T)>, DiscoverError>
where
    T: Send + 'static,
    F: Fn(Target, Result<Served, DiscoverError>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send,
{
    let config = client_config()?;
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut results: Vec<Option<T>> = (0..targets.len()).map(|_| None).collect();
    let task_error = |e: tokio::task::JoinError| DiscoverError::Task(e.to_string());
    for (i, target) in targets.iter().enumerate() {
        let permit = loop {
            tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => break permit.map_err(|e| DiscoverError::Task(e.to_string()))?,
                Some(joined) = tasks.join_next() => {
                    let (j, out) = joined.map_err(task_error)?;
                    done(&out);
                    results[j] = Some(out);
                }
            }
        };
        let (target, options, config, then) = (target.clone(), options.clone(), Arc::clone(&config), then.clone());
        tasks.spawn(async move {
            let r = scan_one(&target, &options, &config).await;
            drop(permit);
            (i, then(target, r).await)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (j, out) = joined.map_err(task_error)?;
        done(&out);
        results[j] = Some(out);
    }
    targets
        .into_iter()
        .zip(results)
        .map(|(t, r)| r.map(|r| (t, r)).ok_or_else(|| DiscoverError::Task("a target was not scanned".into())))
        .collect()
}

/// Scans one target.
pub async fn scan_one(
    target: &Target,
    options: &ScanOptions,
    config: &Arc<rustls::ClientConfig>,
) -> Result<Served, DiscoverError> {
    let (mut stream, address) = connect(target, options.connect_timeout).await?;
    let name = target.server_name();
    let handshake = async {
        if let Some(s) = options.starttls {
            s.upgrade(&mut stream).await?;
        }
        let server_name = match &name {
            Some(n) => ServerName::try_from(n.clone()).map_err(|_| DiscoverError::Target(format!("SNI name `{n}`")))?,
            None => ServerName::IpAddress(address.ip().into()),
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
        let tls = connector.connect(server_name, stream).await.map_err(|e| DiscoverError::Handshake(e.to_string()))?;
        let (_, session) = tls.get_ref();
        let chain: Vec<Vec<u8>> =
            session.peer_certificates().unwrap_or_default().iter().map(|c| c.as_ref().to_vec()).collect();
        let version = match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            _ => "TLSv1.2",
        };
        Ok::<_, DiscoverError>(Served { tls_version: version.into(), chain, legacy: false, address })
    };
    let first = match tokio::time::timeout(options.handshake_timeout, handshake).await {
        Ok(r) => r,
        Err(_) => return Err(DiscoverError::Timeout("handshake")),
    };
    match first {
        Ok(served) if !served.chain.is_empty() => Ok(served),
        Ok(_) => Err(DiscoverError::NoCertificate),
        Err(DiscoverError::Handshake(tls_error)) => legacy_probe(address, options, &name)
            .await
            .map_err(|probe| DiscoverError::NoTls { tls: tls_error, probe: probe.to_string() }),
        Err(e) => Err(e),
    }
}

/// The second attempt, for servers rustls cannot talk to.
async fn legacy_probe(
    address: SocketAddr,
    options: &ScanOptions,
    name: &Option<String>,
) -> Result<Served, DiscoverError> {
    let mut stream = tokio::time::timeout(options.connect_timeout, TcpStream::connect(address))
        .await
        .map_err(|_| DiscoverError::Timeout("connect"))?
        .map_err(|e| DiscoverError::Connect(format!("{address}: {e}")))?;
    let probe = async {
        if let Some(s) = options.starttls {
            s.upgrade(&mut stream).await?;
        }
        legacy::probe(&mut stream, name.as_deref()).await.map_err(DiscoverError::Probe)
    };
    let hello =
        tokio::time::timeout(options.handshake_timeout, probe).await.map_err(|_| DiscoverError::Timeout("probe"))??;
    Ok(Served { tls_version: hello.version.into(), chain: hello.chain, legacy: true, address })
}

/// Resolves the target and connects to the first address that answers.
async fn connect(target: &Target, timeout: Duration) -> Result<(TcpStream, SocketAddr), DiscoverError> {
    let attempt = async {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| DiscoverError::Resolve(format!("{}: {e}", target.host)))?
            .collect();
        let mut last = DiscoverError::Resolve(format!("{}: no address", target.host));
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok((s, addr));
                }
                Err(e) => last = DiscoverError::Connect(format!("{addr}: {e}")),
            }
        }
        Err(last)
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| DiscoverError::Timeout("connect"))?
}
