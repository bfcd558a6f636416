//! The port: what the SCEP server needs from the core (the RA key in the HSM, challenge checks,
//! issuance and lookups in the ledger).

use std::{future::Future, net::IpAddr};

use crate::error::ScepError;

/// What GetCACert returns for a path name: the RA certificates and the CA chain above them.
/// The RA either has one RSA key that decrypts requests and signs CertReps (keyEncipherment and
/// digitalSignature), or one key for each (RFC 8894 §2.2).
#[derive(Debug, Clone)]
pub struct CaCerts {
    /// The RA encryption certificate (RSA, keyEncipherment) when the RA decrypts with a key
    /// that does not sign (DER).
    pub ra_encryption: Option<Vec<u8>>,
    /// The RA signing certificate, which CertReps carry (DER).
    pub ra: Vec<u8>,
    /// Issuing CA, then the root (DER).
    pub chain: Vec<Vec<u8>>,
}

impl CaCerts {
    /// GetCACert's order: the encryption certificate first (many clients encrypt to
    /// the first certificate), then the signing certificate, then the chain.
    pub fn in_order(self) -> Vec<Vec<u8>> {
        self.ra_encryption.into_iter().chain(std::iter::once(self.ra)).chain(self.chain).collect()
    }
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
    /// RSA PKCS#1 v1.5 decryption with the RA decryption key (the envelope's content-encryption
    /// key). Any error is answered by implicit rejection ([`crate::rejection`]): its cause must
    /// not reach the client.
    fn ra_decrypt(&self, encrypted_key: &[u8]) -> impl Future<Output = Result<Vec<u8>, ScepError>> + Send;
    /// Records that an envelope from `peer` did not open ([`crate::rejection`]).
    fn envelope_failed(&self, peer: Option<IpAddr>);
    /// True when `peer` has had too many envelopes that did not open lately: its PKIOperations
    /// get HTTP 429 without any RA key work.
    fn envelopes_limited(&self, peer: Option<IpAddr>) -> bool;
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
