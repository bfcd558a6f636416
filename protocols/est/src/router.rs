//! HTTP binding: `/.well-known/est/{op}` and `/.well-known/est/{label}/{op}` (§3.2.2), generic
//! over the core's [`EstBackend`]. Mount with `nest("/.well-known/est", router(...))` on the
//! HTTPS listener. Every answer has a Content-Length.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Path, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::any,
    Extension, Router,
};
use der::Decode;
use x509_cert::{request::CertReq, Certificate};

use crate::{
    auth::{basic_credentials, TlsClientChain},
    backend::{CertAuth, EnrollOutcome, EnrollRequest, EstBackend, Identity, KeygenOutcome, LabelPolicy},
    cmc,
    error::EstError,
    multipart, serverkey,
    wire::{self, CERTS_ONLY, CSRATTRS, PKCS10, PKCS7_MIME},
};

/// Largest request body accepted (a CSR or a CMC request with an RSA-4096 key fits many times).
pub const MAX_BODY: usize = 64 * 1024;

/// Label used for paths without one.
pub const DEFAULT_LABEL: &str = "default";

/// Router settings.
#[derive(Debug, Clone)]
pub struct EstSettings {
    /// HTTP Basic realm.
    pub realm: String,
    /// Seconds a client should wait before retrying a request that awaits approval.
    pub retry_after: u64,
    /// Labels and how each authenticates; [`DEFAULT_LABEL`] serves paths without a label.
    pub labels: BTreeMap<String, LabelPolicy>,
}

struct EstState<B> {
    backend: B,
    settings: EstSettings,
}

type St<B> = Arc<EstState<B>>;

/// The six operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    CaCerts,
    SimpleEnroll,
    SimpleReenroll,
    CsrAttrs,
    ServerKeygen,
    FullCmc,
}

impl Operation {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cacerts" => Self::CaCerts,
            "simpleenroll" => Self::SimpleEnroll,
            "simplereenroll" => Self::SimpleReenroll,
            "csrattrs" => Self::CsrAttrs,
            "serverkeygen" => Self::ServerKeygen,
            "fullcmc" => Self::FullCmc,
            _ => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Self::CaCerts | Self::CsrAttrs => Method::GET,
            _ => Method::POST,
        }
    }
}

/// The EST routes.
pub fn router<B: EstBackend>(backend: B, settings: EstSettings) -> Router {
    let state = Arc::new(EstState { backend, settings });
    Router::new().route("/{op}", any(unlabelled::<B>)).route("/{label}/{op}", any(labelled::<B>)).with_state(state)
}

async fn unlabelled<B: EstBackend>(
    State(s): State<St<B>>,
    Path(op): Path<String>,
    method: Method,
    headers: HeaderMap,
    chain: Option<Extension<TlsClientChain>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> Response {
    let client = Client::new(chain, peer);
    dispatch(s, DEFAULT_LABEL.to_owned(), op, method, headers, client, body).await
}

/// Who is on the other end of the connection: its verified TLS client chain and its address.
struct Client {
    chain: Option<TlsClientChain>,
    peer: Option<IpAddr>,
}

impl Client {
    fn new(chain: Option<Extension<TlsClientChain>>, peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> Self {
        Self { chain: chain.map(|c| c.0), peer: peer.map(|Extension(ConnectInfo(addr))| addr.ip()) }
    }
}

async fn labelled<B: EstBackend>(
    State(s): State<St<B>>,
    Path((label, op)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    chain: Option<Extension<TlsClientChain>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> Response {
    dispatch(s, label, op, method, headers, Client::new(chain, peer), body).await
}

async fn dispatch<B: EstBackend>(
    s: St<B>,
    label: String,
    op: String,
    method: Method,
    headers: HeaderMap,
    client: Client,
    body: Body,
) -> Response {
    let result = handle(&s, &label, &op, &method, &headers, client, body).await;
    match result {
        Ok(r) => r,
        Err(e) => {
            if !matches!(e, EstError::Internal(_)) {
                tracing::debug!(%label, %op, status = e.status().as_u16(), reason = %e, "EST request refused");
            }
            e.into_response()
        }
    }
}

async fn handle<B: EstBackend>(
    s: &St<B>,
    label: &str,
    op: &str,
    method: &Method,
    headers: &HeaderMap,
    client: Client,
    body: Body,
) -> Result<Response, EstError> {
    let op = Operation::parse(op).ok_or(EstError::NotFound)?;
    let policy = s.settings.labels.get(label).ok_or(EstError::NotFound)?;
    if *method != op.method() {
        return Err(EstError::MethodNotAllowed);
    }
    // Read the whole body before any refusal: answering an HTTP/2 stream whose body was not
    // consumed resets it, and some clients (curl) report the reset instead of the answer.
    let body = if op.method() == Method::POST { read_body(body).await? } else { Bytes::new() };
    match op {
        Operation::CaCerts => {
            let certs = s.backend.ca_certs(label).await?;
            Ok(base64_response(PKCS7_MIME, &wire::certs_only(&certs)?))
        }
        Operation::CsrAttrs => Ok(match &policy.csr_attrs {
            Some(der) => base64_response(CSRATTRS, der),
            None => StatusCode::NO_CONTENT.into_response(),
        }),
        Operation::SimpleEnroll | Operation::SimpleReenroll | Operation::ServerKeygen => {
            wire::require_media_type(headers, PKCS10)?;
            let identity = authenticate(s, label, policy, headers, &client, op).await?;
            let csr_der = wire::decode_body(&body)?;
            let csr = CertReq::from_der(&csr_der).map_err(|_| EstError::bad("the body is not a PKCS#10 request"))?;
            let renews = if op == Operation::SimpleReenroll { Some(reenrolled_serial(&identity, &csr)?) } else { None };
            // A request for an encrypted key is checked before anything is issued.
            let recipient = if op == Operation::ServerKeygen {
                let client_cert = match &identity {
                    Identity::Certificate(c) => Some(c.der.as_slice()),
                    Identity::Basic { .. } => None,
                };
                serverkey::requested_recipient(&csr, client_cert)?
            } else {
                None
            };
            let request = EnrollRequest { label: label.to_owned(), identity, csr_der, renews };
            if op == Operation::ServerKeygen {
                return match s.backend.server_keygen(request).await? {
                    KeygenOutcome::Issued { key_pkcs8, cert_der } => {
                        match keygen_response(s, label, key_pkcs8, &cert_der, recipient.as_ref()).await {
                            Ok(response) => Ok(response),
                            Err(e) => {
                                undeliverable(s, label, &cert_der, &e).await;
                                Err(e)
                            }
                        }
                    }
                    KeygenOutcome::Pending => Ok(accepted(s.settings.retry_after)),
                };
            }
            match s.backend.enroll(request).await? {
                EnrollOutcome::Issued(cert) => Ok(base64_response(CERTS_ONLY, &wire::certs_only(&[cert])?)),
                EnrollOutcome::Pending => Ok(accepted(s.settings.retry_after)),
            }
        }
        Operation::FullCmc => {
            wire::require_media_type(headers, PKCS7_MIME)?;
            let identity = authenticate(s, label, policy, headers, &client, op).await?;
            let der = wire::decode_body(&body)?;
            let (status, response) = cmc::handle(&s.backend, label, identity, &der).await?;
            Ok(respond(
                status,
                "application/pkcs7-mime; smime-type=CMC-response",
                wire::encode_body(&response).into_bytes(),
                true,
            ))
        }
    }
}

/// The `/serverkeygen` answer (§4.4.2): the key, in clear or encrypted to `recipient` (signed
/// by the label's CA through the port), then the certificate.
async fn keygen_response<B: EstBackend>(
    s: &St<B>,
    label: &str,
    key_pkcs8: Vec<u8>,
    cert_der: &[u8],
    recipient: Option<&serverkey::Recipient>,
) -> Result<Response, EstError> {
    let (key_type, key) = match recipient {
        Some(r) => (multipart::SERVER_GENERATED_KEY, serverkey::encrypted_key(&s.backend, label, &key_pkcs8, r).await?),
        None => (multipart::PKCS8, key_pkcs8),
    };
    let (content_type, body) = multipart::server_keygen_body(key_type, &key, &wire::certs_only(&[cert_der.to_vec()])?);
    Ok(respond(StatusCode::OK, &content_type, body, false))
}

/// The certificate was issued but its answer could not be built: its key exists nowhere else
/// now, so the backend revokes it ([`EstBackend::undeliverable`]). The client gets `error`.
async fn undeliverable<B: EstBackend>(s: &St<B>, label: &str, cert_der: &[u8], error: &EstError) {
    let reason = match error {
        EstError::Internal(detail) => detail.clone(),
        other => other.to_string(),
    };
    if let Err(e) = s.backend.undeliverable(label, cert_der, &reason).await {
        tracing::error!(%label, error = %e, %reason, "a /serverkeygen certificate nobody received could not be revoked");
    }
}

/// The requester: a TLS client certificate the label accepts, else HTTP Basic credentials.
/// The identity of the request: its TLS client certificate where the label accepts one for
/// `op` (every operation, or `/simplereenroll` only), else its Basic credentials.
async fn authenticate<B: EstBackend>(
    s: &St<B>,
    label: &str,
    policy: &LabelPolicy,
    headers: &HeaderMap,
    client: &Client,
    op: Operation,
) -> Result<Identity, EstError> {
    let reenroll = op == Operation::SimpleReenroll;
    let accepted = match policy.client_cert {
        CertAuth::On => true,
        CertAuth::Reenroll => reenroll,
        CertAuth::Off => false,
    };
    if let (true, Some(chain)) = (accepted, &client.chain) {
        if !chain.0.is_empty() {
            return Ok(Identity::Certificate(s.backend.check_client_cert(label, &chain.0, reenroll).await?));
        }
    }
    let unauthorized = || EstError::Unauthorized { realm: s.settings.realm.clone() };
    if !policy.basic {
        return Err(EstError::Forbidden("this label requires a TLS client certificate".into()));
    }
    let (user, password) = basic_credentials(headers).ok_or_else(unauthorized)?;
    if s.backend.check_password(label, &user, &password, client.peer).await? {
        Ok(Identity::Basic { user })
    } else {
        Err(unauthorized())
    }
}

/// §4.2.2: re-enrollment is authenticated by the certificate being renewed, and the CSR keeps
/// its subject and subjectAltName. Names are compared after decoding, SANs as sets.
fn reenrolled_serial(identity: &Identity, csr: &CertReq) -> Result<String, EstError> {
    let Identity::Certificate(client) = identity else {
        return Err(EstError::Forbidden("re-enrollment needs the TLS client certificate being renewed".into()));
    };
    let serial = client
        .serial
        .clone()
        .ok_or_else(|| EstError::Forbidden("the client certificate was not issued by this CA".into()))?;
    let cert =
        Certificate::from_der(&client.der).map_err(|e| EstError::Internal(format!("client certificate: {e}")))?;
    crate::names::same_names(&cert, csr)
        .map_err(|what| EstError::Forbidden(format!("the CSR {what} differs from the certificate being renewed")))?;
    Ok(serial)
}

async fn read_body(body: Body) -> Result<Bytes, EstError> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| EstError::bad(format!("request bodies are limited to {MAX_BODY} bytes")))
}

/// 202 with delta-seconds Retry-After (libest does not parse HTTP dates).
fn accepted(retry_after: u64) -> Response {
    let mut r = respond(StatusCode::ACCEPTED, "text/plain; charset=utf-8", b"202 awaiting approval\n".to_vec(), false);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

fn base64_response(content_type: &str, der: &[u8]) -> Response {
    respond(StatusCode::OK, content_type, wire::encode_body(der).into_bytes(), true)
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>, base64: bool) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if base64 {
        // Not an HTTP header per errata 5107, but old clients look for it.
        h.insert("content-transfer-encoding", HeaderValue::from_static("base64"));
    }
    r
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use base64ct::Encoding;
    use der::{asn1::OctetString, Any, Encode};
    use tower::ServiceExt;
    use x509_cert::{
        request::CertReqInfo,
        spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned},
    };

    use super::*;
    use crate::backend::{ClientCertificate, CmsDigest, CmsSigner};

    /// `(label, cert_der, reason)` of an [`EstBackend::undeliverable`] call.
    type Undelivered = (String, Vec<u8>, String);

    /// Issues `cert_der` with `key_pkcs8`; signing the key package fails as an HSM outage would;
    /// records what was declared undeliverable.
    #[derive(Clone)]
    struct Fake {
        key_pkcs8: Vec<u8>,
        cert_der: Vec<u8>,
        undelivered: Arc<Mutex<Vec<Undelivered>>>,
    }

    impl EstBackend for Fake {
        async fn ca_certs(&self, _: &str) -> Result<Vec<Vec<u8>>, EstError> {
            Ok(Vec::new())
        }
        async fn check_password(
            &self,
            _: &str,
            user: &str,
            password: &str,
            _: Option<IpAddr>,
        ) -> Result<bool, EstError> {
            Ok(user == "u" && password == "p")
        }
        async fn check_client_cert(&self, _: &str, _: &[Vec<u8>], _: bool) -> Result<ClientCertificate, EstError> {
            Err(EstError::Forbidden("no".into()))
        }
        async fn enroll(&self, _: EnrollRequest) -> Result<EnrollOutcome, EstError> {
            Err(EstError::Internal("not used".into()))
        }
        async fn server_keygen(&self, _: EnrollRequest) -> Result<KeygenOutcome, EstError> {
            Ok(KeygenOutcome::Issued { key_pkcs8: self.key_pkcs8.clone(), cert_der: self.cert_der.clone() })
        }
        async fn undeliverable(&self, label: &str, cert_der: &[u8], reason: &str) -> Result<(), EstError> {
            self.undelivered.lock().unwrap().push((label.to_owned(), cert_der.to_vec(), reason.to_owned()));
            Ok(())
        }
        async fn cms_signer(&self, _: &str) -> Result<CmsSigner, EstError> {
            Ok(CmsSigner {
                cert_der: self.cert_der.clone(),
                digest: CmsDigest::Sha256,
                signature_algorithm_der: Vec::new(),
            })
        }
        async fn cms_sign(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, EstError> {
            Err(EstError::Unavailable)
        }
    }

    use serverkey::tests::rsa_spki;

    /// A self-signed certificate standing for the one the backend issued.
    fn certificate() -> Vec<u8> {
        serverkey::tests::RSA_CERT.to_vec()
    }

    /// A `/serverkeygen` CSR (its signature is the backend's to check), asking for the key
    /// encrypted to its own RSA key when `encrypted`.
    fn csr(encrypted: bool) -> Vec<u8> {
        let spki_der = rsa_spki();
        let public_key = SubjectPublicKeyInfoOwned::from_der(&spki_der).unwrap();
        let mut attributes = der::asn1::SetOfVec::new();
        if encrypted {
            let id = OctetString::new(serverkey::key_identifier(&public_key)).unwrap();
            let attr = crate::signed::attribute(serverkey::ID_AA_ASYMM_DECRYPT_KEY_ID, Any::encode_from(&id).unwrap())
                .unwrap();
            attributes.insert(attr).unwrap();
        }
        CertReq {
            info: CertReqInfo {
                version: x509_cert::request::Version::V1,
                subject: Default::default(),
                public_key,
                attributes,
            },
            algorithm: AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                parameters: None,
            },
            signature: der::asn1::BitString::from_bytes(&[0]).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    async fn serverkeygen(fake: Fake, csr_der: &[u8]) -> (StatusCode, String) {
        let settings = EstSettings {
            realm: "test".into(),
            retry_after: 1,
            labels: BTreeMap::from([(DEFAULT_LABEL.to_owned(), LabelPolicy { basic: true, ..Default::default() })]),
        };
        let request = axum::http::Request::post("/serverkeygen")
            .header(header::CONTENT_TYPE, PKCS10)
            .header(header::AUTHORIZATION, format!("Basic {}", base64ct::Base64::encode_string(b"u:p")))
            .body(Body::from(wire::encode_body(csr_der)))
            .unwrap();
        let response = router(fake, settings).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn fake(cert_der: Vec<u8>) -> Fake {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng);
        Fake { key_pkcs8: key.unwrap().as_ref().to_vec(), cert_der, undelivered: Arc::default() }
    }

    #[tokio::test]
    async fn a_key_package_that_cannot_be_signed_undoes_the_issuance() {
        let fake = fake(certificate());
        let (status, body) = serverkeygen(fake.clone(), &csr(true)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(!body.contains(wire::encode_body(&fake.key_pkcs8).trim()), "{body}");
        let undelivered = fake.undelivered.lock().unwrap().clone();
        assert_eq!(undelivered.len(), 1);
        assert_eq!((undelivered[0].0.as_str(), &undelivered[0].1), (DEFAULT_LABEL, &fake.cert_der));
    }

    #[tokio::test]
    async fn a_plain_answer_that_cannot_be_built_undoes_the_issuance() {
        // A certificate certs-only cannot encode: the answer fails after issuance.
        let fake = fake(b"not a certificate".to_vec());
        let (status, body) = serverkeygen(fake.clone(), &csr(false)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert!(!body.contains(wire::encode_body(&fake.key_pkcs8).trim()), "{body}");
        let undelivered = fake.undelivered.lock().unwrap().clone();
        assert_eq!(undelivered.len(), 1);
        assert_eq!(undelivered[0].1, b"not a certificate");
        assert!(undelivered[0].2.contains("certs-only"), "{}", undelivered[0].2);
    }

    #[tokio::test]
    async fn a_delivered_answer_undoes_nothing() {
        let fake = fake(certificate());
        let (status, body) = serverkeygen(fake.clone(), &csr(false)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("application/pkcs8"), "{body}");
        assert!(body.contains(wire::encode_body(&fake.key_pkcs8).trim()), "{body}");
        assert!(fake.undelivered.lock().unwrap().is_empty());
    }
}
