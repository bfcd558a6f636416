//! The port: what the SCEP server needs from the core (the RA key in the HSM, challenge checks,
//! issuance and lookups in the ledger).

use std::future::Future;

use crate::error::ScepError;

/// What GetCACert returns for a path name: the RA certificate (RSA, keyEncipherment and
/// digitalSignature; it decrypts requests and signs CertReps) and the CA chain above it.
#[derive(Debug, Clone)]
pub struct CaCerts {
    /// RA certificate (DER).
    pub ra: Vec<u8>,
    /// Issuing CA, then the root (DER).
    pub chain: Vec<Vec<u8>>,
}

/// A decrypted, signature-checked PKCSReq or RenewalReq.
#[derive(Debug, Clone)]
pub struct PkiRequest {
    /// Path name that selected the profile (`default` without one).
    pub name: String,
    /// transactionID.
    pub transaction_id: String,
    /// DER PKCS#10 (signature not yet checked).
    pub csr_der: Vec<u8>,
    /// The certificate that signed the pkiMessage (self-signed for PKCSReq; the certificate
    /// being renewed for RenewalReq).
    pub signer_cert_der: Vec<u8>,
    /// RenewalReq.
    pub renewal: bool,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SUCCESS with these certificates (DER; the issued one first) or CRLs.
    Success {
        /// Certificates.
        certs: Vec<Vec<u8>>,
        /// CRLs (GetCRL).
        crls: Vec<Vec<u8>>,
    },
    /// PENDING: waiting for an operator.
    Pending,
}

/// The core services behind the SCEP router.
pub trait ScepBackend: Clone + Send + Sync + 'static {
    /// True when `name` (the first path segment under `/scep`, or `default`) is configured.
    fn knows(&self, name: &str) -> bool;
    /// Certificates for GetCACert of `name`.
    fn ca_certs(&self, name: &str) -> impl Future<Output = Result<CaCerts, ScepError>> + Send;
    /// The next CA's certificates during a rollover (GetNextCACert); `None` when none is planned.
    fn next_ca_certs(&self, name: &str) -> impl Future<Output = Result<Option<CaCerts>, ScepError>> + Send;
    /// RSA PKCS#1 v1.5 decryption with the RA key (the envelope's content-encryption key).
    fn ra_decrypt(&self, encrypted_key: &[u8]) -> impl Future<Output = Result<Vec<u8>, ScepError>> + Send;
    /// sha256WithRSAEncryption signature with the RA key over `data`.
    fn ra_sign(&self, data: &[u8]) -> impl Future<Output = Result<Vec<u8>, ScepError>> + Send;
    /// PKCSReq / RenewalReq: issue, queue for approval, or refuse. A repeated transactionID
    /// returns the earlier outcome instead of issuing twice.
    fn enroll(&self, request: PkiRequest) -> impl Future<Output = Result<Outcome, ScepError>> + Send;
    /// CertPoll: the state of transaction `transaction_id` of `name`.
    fn poll(&self, name: &str, transaction_id: &str) -> impl Future<Output = Result<Outcome, ScepError>> + Send;
    /// GetCert: the certificate with this issuer (DER Name) and serial (DER INTEGER content).
    fn get_cert(&self, issuer: &[u8], serial: &[u8]) -> impl Future<Output = Result<Outcome, ScepError>> + Send;
    /// GetCRL: the current complete CRL of the issuer of the certificate named.
    fn get_crl(&self, issuer: &[u8], serial: &[u8]) -> impl Future<Output = Result<Outcome, ScepError>> + Send;
}
