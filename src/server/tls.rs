//! TLS for privca's own listeners: a rustls configuration whose private key stays in the HSM
//! (a `rustls::sign::SigningKey` that calls the signer), and the server certificate
//! ([`ServerCert`]), issued by privca itself through the normal issuance cycle (ledger row,
//! audit events; a renewal records the serial it renews). At start-up the chain saved in the
//! data directory is reused unless it is for another key, no longer valid in the ledger
//! (revoked) or down to a third of its lifetime; while serving, the `tls_refresh` job (see
//! `jobs`) applies the same test every hour and swaps a reissued certificate in place: new
//! handshakes on every HTTPS listener get it, open connections keep theirs, nothing restarts.
//! TLS 1.2 and 1.3 only.
//!
//! Handshake signatures off the async workers: rustls calls `Signer::sign` synchronously, on
//! the tokio worker that polls the handshake. `HsmKey` queues the signature on the
//! [`SigningService`] as [`JobClass::Handshake`] and waits for it inside
//! `tokio::task::block_in_place` (see [`SigningService::sign_blocking`]): the worker hands its
//! other tasks to another thread while this one waits, and the handshakes waiting for the
//! token are bounded by the class's queue capacity; beyond it the handshake fails at once
//! (the client sees an alert and may reconnect). A `LazyConfigAcceptor` would not help: the
//! signature covers the handshake transcript, so it cannot be made before rustls asks for it,
//! and rustls has no asynchronous signer.

use std::{
    net::IpAddr,
    path::PathBuf,
    sync::{Arc, PoisonError, RwLock},
};

use der::Decode;
use rustls::{
    server::{ClientHello, ResolvesServerCert},
    sign::{CertifiedKey, Signer as TlsSigner, SigningKey},
    SignatureAlgorithm, SignatureScheme,
};
use rustls_pki_types::CertificateDer;

use crate::{
    ca::{bootstrap::TLS_KEY, x509, CertificateAuthority, IssuanceRequest, IssueOutcome, Requester, San},
    error::CaError,
    signer::{JobClass, SignerError, SigningAlgorithm, SigningService},
};

/// The ECDSA P-256 TLS key, held in the token.
#[derive(Clone)]
struct HsmKey {
    signing: SigningService,
}

impl std::fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HsmKey(privca-tls)")
    }
}

impl SigningKey for HsmKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn TlsSigner>> {
        offered.contains(&SignatureScheme::ECDSA_NISTP256_SHA256).then(|| Box::new(self.clone()) as Box<dyn TlsSigner>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

impl TlsSigner for HsmKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.signing.sign_blocking(JobClass::Handshake, TLS_KEY, SigningAlgorithm::EcdsaSha256, message).map_err(|e| {
            if !matches!(e, SignerError::Busy(_)) {
                tracing::warn!(error = %e, "TLS handshake signature failed");
            }
            rustls::Error::General("handshake signature unavailable".into())
        })
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

/// privca's own TLS certificate as the listeners serve it (cheap to clone; clones share it).
#[derive(Clone)]
pub struct ServerCert {
    ca: CertificateAuthority,
    key: Arc<HsmKey>,
    current: Arc<RwLock<Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert").field("serial", &self.serial()).finish()
    }
}

impl ServerCert {
    /// The saved certificate, or a new one (see [`server_chain`]).
    pub async fn load(ca: &CertificateAuthority) -> Result<Self, CaError> {
        let chain = server_chain(ca).await?;
        let key = Arc::new(HsmKey { signing: ca.signing().clone() });
        let certified = Arc::new(CertifiedKey::new(chain, key.clone()));
        Ok(Self { ca: ca.clone(), key, current: Arc::new(RwLock::new(certified)) })
    }

    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The chain served now, leaf first.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current().cert.clone()
    }

    /// The serial (ledger form: lowercase hex) of the certificate served now.
    pub fn serial(&self) -> Option<String> {
        let current = self.current();
        let leaf = x509_cert::Certificate::from_der(current.cert.first()?).ok()?;
        Some(hex::encode(leaf.tbs_certificate.serial_number.as_bytes()))
    }

    /// Reissues the certificate if, at unix time `now`, it is down to a third of its lifetime,
    /// no longer valid in the ledger or for another key; true if the certificate served
    /// changed. The job calls it with the current time; tests may pass a later one.
    pub async fn refresh_at(&self, now: i64) -> Result<bool, CaError> {
        let spki = self.ca.signing().key_info(TLS_KEY)?.spki_der;
        let current = self.current();
        let leaf = current.cert.first().map(|c| c.as_ref().to_vec());
        if let Some(leaf) = &leaf {
            if still_good(&self.ca, leaf, &spki, now).await {
                return Ok(false);
            }
        }
        let renews = leaf.as_deref().and_then(serial_of);
        let chain = issue(&self.ca, spki, renews).await?;
        let fresh = Arc::new(CertifiedKey::new(chain, self.key.clone()));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(true)
    }

    /// [`ServerCert::refresh_at`] now.
    pub async fn refresh(&self) -> Result<bool, CaError> {
        self.refresh_at(crate::ledger::now()).await
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn serial_of(leaf: &[u8]) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(leaf).ok()?;
    Some(hex::encode(cert.tbs_certificate.serial_number.as_bytes()))
}

/// Trust anchors for TLS client certificates (EST): the root, every issuer (so a device may
/// send its leaf alone) and the configured bootstrap CAs. Also returns the bootstrap CAs'
/// subjects (DER), which the EST adapter accepts without a ledger row.
pub fn client_trust(ca: &CertificateAuthority) -> Result<(rustls::RootCertStore, Vec<Vec<u8>>), CaError> {
    let mut roots = rustls::RootCertStore::empty();
    for issuer in ca.root().into_iter().chain(ca.issuers()) {
        roots
            .add(CertificateDer::from(issuer.der.clone()))
            .map_err(|e| CaError::internal(format!("CA certificate {} as a trust anchor", issuer.id)).with_source(e))?;
    }
    let mut bootstrap = Vec::new();
    for file in &ca.config().est.bootstrap_ca {
        let path = if file.is_absolute() { file.clone() } else { ca.config().data_dir.join(file) };
        let pem = std::fs::read(&path).map_err(|e| {
            CaError::internal(format!("est.bootstrap_ca: cannot read {}", path.display())).with_source(e)
        })?;
        let certs = x509_cert::Certificate::load_pem_chain(&pem).map_err(|e| {
            CaError::internal(format!("est.bootstrap_ca: {} is not PEM", path.display())).with_source(e)
        })?;
        for cert in certs {
            let der = der::Encode::to_der(&cert).map_err(|e| CaError::internal("bootstrap CA").with_source(e))?;
            bootstrap.push(
                der::Encode::to_der(&cert.tbs_certificate.subject)
                    .map_err(|e| CaError::internal("bootstrap CA").with_source(e))?,
            );
            roots.add(CertificateDer::from(der)).map_err(|e| {
                CaError::internal(format!("est.bootstrap_ca: {} is not a usable trust anchor", path.display()))
                    .with_source(e)
            })?;
        }
    }
    Ok((roots, bootstrap))
}

/// Builds the rustls server configuration for the HTTPS listeners. With `client_roots`, clients
/// may (not must) present a certificate chaining to them (EST); it is verified here and handed
/// to the request handlers.
/// The certificate comes from `cert`, read at every handshake.
pub fn server_config(
    cert: &ServerCert,
    client_roots: Option<rustls::RootCertStore>,
) -> Result<rustls::ServerConfig, CaError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match client_roots {
        Some(roots) => Some(
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| CaError::internal("TLS client verifier").with_source(e))?,
        ),
        None => None,
    };
    server_config_with(cert, verifier)
}

/// The admin listener's configuration: with client-certificate login configured, it asks for
/// (never requires) a certificate and leaves verifying it to the admin authentication
/// ([`super::client_auth::Deferred`]).
pub fn admin_server_config(
    cert: &ServerCert,
    auth: Option<&crate::config::admin::ClientAuth>,
) -> Result<rustls::ServerConfig, CaError> {
    let verifier = auth.map(|a| {
        Arc::new(super::client_auth::Deferred(a.verifier.clone()))
            as Arc<dyn rustls::server::danger::ClientCertVerifier>
    });
    server_config_with(cert, verifier)
}

fn server_config_with(
    cert: &ServerCert,
    verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> Result<rustls::ServerConfig, CaError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| CaError::internal("TLS configuration").with_source(e))?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(cert.clone()));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Path of the server chain in the data directory.
fn chain_path(ca: &CertificateAuthority) -> PathBuf {
    ca.config().data_dir.join("tls").join("server-chain.pem")
}

/// Returns the saved server certificate chain, or issues a new one when there is none, when
/// it is for another key, no longer valid in the ledger, or down to a third of its lifetime.
async fn server_chain(ca: &CertificateAuthority) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let path = chain_path(ca);
    let spki = ca.signing().key_info(TLS_KEY)?.spki_der;
    let mut renews = None;
    if let Ok(text) = std::fs::read_to_string(&path) {
        let ders = x509::pem_certificates(&text)?;
        if let Some(leaf) = ders.first() {
            if still_good(ca, leaf, &spki, crate::ledger::now()).await {
                return Ok(ders.into_iter().map(CertificateDer::from).collect());
            }
            renews = serial_of(leaf);
        }
    }
    issue(ca, spki, renews).await
}

/// Issues the server certificate for the token key `spki` through the issuance cycle, saves
/// the chain in the data directory and returns it.
async fn issue(
    ca: &CertificateAuthority,
    spki: Vec<u8>,
    renews: Option<String>,
) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let path = chain_path(ca);
    let sans = ca
        .config()
        .server
        .tls_names
        .iter()
        .map(|n| n.parse::<IpAddr>().map(San::Ip).unwrap_or_else(|_| San::Dns(n.to_ascii_lowercase())))
        .collect();
    let request = IssuanceRequest {
        profile: ca.config().server.tls_profile.clone(),
        spki_der: spki,
        subject: Vec::new(),
        sans,
        requester: Requester::system(),
        owner: Some("privca".into()),
        renews,
        csr_der: None,
        approval_id: None,
        acme_order: None,
        one_per_requester: false,
    };
    let cert = match ca.issue(request).await? {
        IssueOutcome::Issued(c) => c,
        IssueOutcome::Pending(_) => {
            return Err(CaError::policy("server.tls_profile requires approval; choose a profile without it"))
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CaError::internal("cannot create tls dir").with_source(e))?;
    }
    crate::ca::chain::write_if_changed(&path, &cert.chain_pem)
        .map_err(|e| CaError::internal("cannot write the server chain").with_source(e))?;
    tracing::info!(serial = %cert.record.serial, renews = ?cert.record.renews_serial, "issued the server's TLS certificate");
    Ok(x509::pem_certificates(&cert.chain_pem)?.into_iter().map(CertificateDer::from).collect())
}

/// For the token key, valid in the ledger, and more than a third of its lifetime left at `now`.
async fn still_good(ca: &CertificateAuthority, leaf: &[u8], spki: &[u8], now: i64) -> bool {
    let Ok(cert) = x509_cert::Certificate::from_der(leaf) else { return false };
    let Ok(leaf_spki) = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info) else { return false };
    let v = &cert.tbs_certificate.validity;
    let (nb, na) = (x509::unix(&v.not_before), x509::unix(&v.not_after));
    let serial = hex::encode(cert.tbs_certificate.serial_number.as_bytes());
    let valid_in_ledger = matches!(
        ca.ledger().certificate(&serial).await,
        Ok(Some(r)) if r.status == crate::ledger::CertStatus::Valid
    );
    leaf_spki == spki && valid_in_ledger && crate::ca::more_than_a_third_left(nb, na, now)
}
