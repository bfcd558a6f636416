//! HTTP binding: `/.well-known/est/{op}` and `/.well-known/est/{label}/{op}` (§3.2.2), generic
//! over the core's [`EstBackend`]. Mount with `nest("/.well-known/est", router(...))` on the
//! HTTPS listener. Every answer has a Content-Length (quirk E4).

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
                        let (key_type, key) = match &recipient {
                            Some(r) => (
                                multipart::SERVER_GENERATED_KEY,
                                serverkey::encrypted_key(&s.backend, label, &key_pkcs8, r).await?,
                            ),
                            None => (multipart::PKCS8, key_pkcs8),
                        };
                        let (content_type, body) =
                            multipart::server_keygen_body(key_type, &key, &wire::certs_only(&[cert_der])?);
                        Ok(respond(StatusCode::OK, &content_type, body, false))
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
/// its subject and subjectAltName. Names are compared after decoding (quirk E9), SANs as sets.
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

/// 202 with delta-seconds Retry-After (quirk E6: libest does not parse HTTP dates).
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
        // Not an HTTP header per errata 5107, but old clients look for it (quirk E1).
        h.insert("content-transfer-encoding", HeaderValue::from_static("base64"));
    }
    r
}
