//! The port: what the EST server needs from the core (authentication against the ledger,
//! issuance through the reserve → sign → commit cycle, CMS signatures in the HSM).

use std::{future::Future, net::IpAddr};

use crate::error::EstError;

/// A TLS client certificate that rustls verified against the configured trust anchors and that
/// the core accepted for the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// DER of the leaf.
    pub der: Vec<u8>,
    /// Subject (RFC 4514), used as the identity.
    pub subject: String,
    /// Ledger serial when privca issued it (a bootstrap CA's certificate has none).
    pub serial: Option<String>,
}

/// Who is enrolling, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// HTTP Basic user.
    Basic {
        /// User name.
        user: String,
    },
    /// TLS client certificate.
    Certificate(ClientCertificate),
}

impl Identity {
    /// The name recorded as requester and, unless the label sets one, as owner.
    pub fn name(&self) -> &str {
        match self {
            Self::Basic { user } => user,
            Self::Certificate(c) => &c.subject,
        }
    }
}

/// One enrollment: `/simpleenroll`, `/simplereenroll`, `/serverkeygen` or the request inside
/// a `/fullcmc` message.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    /// Label (`default` when the path has none).
    pub label: String,
    /// Authenticated requester.
    pub identity: Identity,
    /// DER PKCS#10 (signature not yet checked).
    pub csr_der: Vec<u8>,
    /// Serial of the certificate being renewed (`/simplereenroll`: the TLS client certificate).
    pub renews: Option<String>,
}

/// Result of an enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollOutcome {
    /// The certificate (DER).
    Issued(Vec<u8>),
    /// Waiting for an operator's approval: answer 202 and let the client retry the same request.
    Pending,
}

/// Result of `/serverkeygen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeygenOutcome {
    /// The generated key (PKCS#8 DER, never stored) and its certificate (DER).
    Issued {
        /// PKCS#8 private key.
        key_pkcs8: Vec<u8>,
        /// Certificate.
        cert_der: Vec<u8>,
    },
    /// Waiting for approval.
    Pending,
}

/// Digest that goes with the signer's signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmsDigest {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

/// Who signs Full PKI Responses for a label (its issuing CA, key in the HSM).
#[derive(Debug, Clone)]
pub struct CmsSigner {
    /// The signer's certificate (DER).
    pub cert_der: Vec<u8>,
    /// Digest of the content and of the signed attributes.
    pub digest: CmsDigest,
    /// Signature algorithm (DER AlgorithmIdentifier).
    pub signature_algorithm_der: Vec<u8>,
}

/// Which TLS client certificates a label accepts, and for what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CertAuth {
    /// None.
    #[default]
    Off,
    /// Only for `/simplereenroll` of the certificate itself (RFC 7030 §4.2.2).
    Reenroll,
    /// For every operation, as far as the backend's rules for the label allow.
    On,
}

/// How a label authenticates and what it tells clients.
#[derive(Debug, Clone, Default)]
pub struct LabelPolicy {
    /// HTTP Basic with `privca est user` credentials.
    pub basic: bool,
    /// TLS client certificates (privca-issued or a bootstrap CA's), and for what.
    pub client_cert: CertAuth,
    /// DER CsrAttrs for `/csrattrs` (`None`: 204).
    pub csr_attrs: Option<Vec<u8>>,
}

/// The core services behind the EST router.
pub trait EstBackend: Clone + Send + Sync + 'static {
    /// DER certificates for `/cacerts` of `label`: its issuing CA and the root.
    fn ca_certs(&self, label: &str) -> impl Future<Output = Result<Vec<Vec<u8>>, EstError>> + Send;
    /// Checks HTTP Basic credentials of a user of `label`, sent from `peer`: `false` for a
    /// wrong user or password alike, `TooManyRequests` past the failure budgets.
    fn check_password(
        &self,
        label: &str,
        user: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> impl Future<Output = Result<bool, EstError>> + Send;
    /// Accepts (or refuses, `Forbidden`, audited) the TLS client chain (leaf first, already
    /// verified by TLS) for `label`: a revoked, expired or unknown privca certificate is
    /// refused, and so is one the label's rules do not admit. `reenroll`: the certificate
    /// authenticates `/simplereenroll` of itself only.
    fn check_client_cert(
        &self,
        label: &str,
        chain: &[Vec<u8>],
        reenroll: bool,
    ) -> impl Future<Output = Result<ClientCertificate, EstError>> + Send;
    /// Issues (or queues for approval) the certificate for `request`.
    fn enroll(&self, request: EnrollRequest) -> impl Future<Output = Result<EnrollOutcome, EstError>> + Send;
    /// Generates a key for the label's profile, issues its certificate with the CSR's subject
    /// and SANs, and returns both; the key is never stored.
    fn server_keygen(&self, request: EnrollRequest) -> impl Future<Output = Result<KeygenOutcome, EstError>> + Send;
    /// `/serverkeygen` of `label` issued `cert_der`, but its answer could not be built
    /// (`reason`: signing or encrypting the key package, or encoding the certificate failed), so
    /// no client holds the certificate or its key, which exists nowhere else. The backend makes
    /// sure the certificate is no longer valid (revoked, audited); the client gets the error and
    /// may ask again.
    fn undeliverable(
        &self,
        label: &str,
        cert_der: &[u8],
        reason: &str,
    ) -> impl Future<Output = Result<(), EstError>> + Send;
    /// The signer of Full PKI Responses for `label`.
    fn cms_signer(&self, label: &str) -> impl Future<Output = Result<CmsSigner, EstError>> + Send;
    /// Signs the DER `signed_attrs` (a SET OF Attribute) with that signer's key.
    fn cms_sign(&self, label: &str, signed_attrs: &[u8]) -> impl Future<Output = Result<Vec<u8>, EstError>> + Send;
}
