//! HTTP binding (RFC 8894 §4): `/scep`, `/scep/<name>` and any deeper path (devices
//! append `/pkiclient.exe`), `?operation=…`. The query is parsed raw: a literal `+` in a
//! base64 `message` stays a `+`, `%0A` and other whitespace are dropped, and GetCACert's
//! `message` is never decoded. Every PKIOperation answer that can be a CertRep is one
//! (`application/x-pki-message`, HTTP 200).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, OriginalUri, State},
    http::{header, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::any,
    Extension, Router,
};
use base64ct::{Base64, Base64Url, Encoding};

use crate::{
    backend::{Outcome, PkiRequest, ScepBackend},
    caps, certs, envelope,
    error::{FailInfo, ScepError},
    message::{self, MessageType},
    rejection::{self, ImplicitRejection},
    reply::{self, RaCertificate, Status},
};

/// Largest PKIOperation accepted (a PKCSReq with an RSA-4096 key is a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// Router settings.
#[derive(Debug, Clone)]
pub struct ScepSettings {
    /// Where the router is mounted (e.g. `/scep`); the first segment after it names the profile.
    pub prefix: String,
    /// Synthetic keys for envelopes that do not open.
    pub rejection: Arc<ImplicitRejection>,
    /// Names that accept requests encrypted with single DES (56-bit keys).
    pub single_des: std::collections::BTreeSet<String>,
}

struct ScepState<B> {
    backend: B,
    settings: ScepSettings,
    /// RA certificates decoded so far, by DER.
    ra: Mutex<HashMap<Vec<u8>, Arc<RaCertificate>>>,
}

/// The RA certificates a name presents: the one that signs CertReps, and the one requests are
/// encrypted to (the same one with a shared RA key).
struct RaPair {
    signing: Arc<RaCertificate>,
    encryption: Arc<RaCertificate>,
}

impl<B: ScepBackend> ScepState<B> {
    /// The RA certificates the backend serves for `name`, each decoded once per distinct DER.
    async fn ra_certificates(&self, name: &str) -> Result<RaPair, ScepError> {
        let certs = self.backend.ca_certs(name).await?;
        let signing = self.decoded(certs.ra)?;
        let encryption = match certs.ra_encryption {
            Some(der) => self.decoded(der)?,
            None => Arc::clone(&signing),
        };
        Ok(RaPair { signing, encryption })
    }

    fn decoded(&self, der: Vec<u8>) -> Result<Arc<RaCertificate>, ScepError> {
        let mut cache = self.ra.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ra) = cache.get(&der) {
            return Ok(Arc::clone(ra));
        }
        if cache.len() >= 64 {
            cache.clear(); // RA certificates change yearly; only renewals pile up here
        }
        let ra = Arc::new(RaCertificate::from_der(der.clone())?);
        cache.insert(der, Arc::clone(&ra));
        Ok(ra)
    }
}

type St<B> = Arc<ScepState<B>>;

/// The SCEP routes (mount with `nest_service(prefix, router(...))`).
pub fn router<B: ScepBackend>(backend: B, settings: ScepSettings) -> Router {
    let state = Arc::new(ScepState { backend, settings, ra: Mutex::new(HashMap::new()) });
    Router::new().route("/", any(handle::<B>)).route("/{*rest}", any(handle::<B>)).with_state(state)
}

/// The profile name: the first path segment after the prefix, else `default`.
fn name_of(path: &str, prefix: &str) -> String {
    path.strip_prefix(prefix)
        .unwrap_or(path)
        .split('/')
        .find(|s| !s.is_empty())
        .filter(|s| !s.ends_with(".exe") && !s.ends_with(".dll"))
        .unwrap_or("default")
        .to_owned()
}

/// `key=value` from a raw query, percent-decoded without turning `+` into a space (an escape
/// that is not one stays as it is).
pub fn query_param(query: &str, key: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_encoding::percent_decode_str(v).collect())
    })
}

/// A GET `message`: base64 with any whitespace, standard alphabet or URL-safe.
pub fn decode_message(raw: &[u8]) -> Result<Vec<u8>, ScepError> {
    let text: String = String::from_utf8_lossy(raw).chars().filter(|c| !c.is_ascii_whitespace()).collect();
    Base64::decode_vec(&text)
        .or_else(|_| Base64Url::decode_vec(&text))
        .map_err(|_| ScepError::Undecodable("the message parameter is not base64".into()))
}

async fn handle<B: ScepBackend>(
    State(s): State<St<B>>,
    OriginalUri(uri): OriginalUri,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    body: Body,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let name = name_of(uri.path(), &s.settings.prefix);
    let query = uri.query().unwrap_or_default();
    let operation = query_param(query, "operation").map(|o| String::from_utf8_lossy(&o).into_owned());
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "request bodies are limited to 64 KiB"),
    };
    if !s.backend.knows(&name) {
        return text(StatusCode::NOT_FOUND, "no SCEP service with this name");
    }
    match (operation.as_deref(), &method) {
        (Some("GetCACaps"), &Method::GET) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=us-ascii")], caps::body()).into_response()
        }
        (Some("GetCACert"), &Method::GET) => match s.backend.ca_certs(&name).await {
            Ok(c) => ca_certs(&c.in_order(), "application/x-x509-ca-ra-cert"),
            Err(e) => error(e),
        },
        (Some("GetNextCACert"), &Method::GET) => next_ca_cert(&s, &name).await,
        (Some("PKIOperation"), _) if s.backend.envelopes_limited(peer) => {
            metrics::counter!("privca_scep_limited_total").increment(1);
            let mut r = text(StatusCode::TOO_MANY_REQUESTS, "too many envelopes that do not open; retry later");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
        (Some("PKIOperation"), &Method::POST) => pki_operation(&s, &name, &body, peer).await,
        (Some("PKIOperation"), &Method::GET) => match query_param(query, "message").map(|m| decode_message(&m)) {
            Some(Ok(der)) => pki_operation(&s, &name, &der, peer).await,
            Some(Err(e)) => error(e),
            None => text(StatusCode::BAD_REQUEST, "PKIOperation needs a message parameter"),
        },
        (Some("GetCACaps" | "GetCACert" | "GetNextCACert" | "PKIOperation"), _) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed for this operation")
        }
        (Some(other), _) => text(StatusCode::BAD_REQUEST, &format!("unknown operation `{other}`")),
        (None, _) => text(StatusCode::BAD_REQUEST, "missing operation parameter"),
    }
}

/// GetNextCACert: the next CA's certificates in a SignedData signed by the RA key, or 404
/// when no rollover is planned.
async fn next_ca_cert<B: ScepBackend>(s: &St<B>, name: &str) -> Response {
    let (current, next) = match (s.ra_certificates(name).await, s.backend.next_ca_certs(name).await) {
        (Ok(current), Ok(Some(next))) => (current.signing, next),
        (_, Ok(None)) => return text(StatusCode::NOT_FOUND, "no CA rollover is in progress"),
        (Err(e), _) | (_, Err(e)) => return error(e),
    };
    let inner = match certs::degenerate(&next.in_order(), &[]) {
        Ok(der) => der,
        Err(e) => return error(ScepError::Internal(e.to_string())),
    };
    match reply::next_ca_cert(&s.backend, &current, inner).await {
        Ok(der) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-x509-next-ca-cert")], der).into_response(),
        Err(e) => error(e),
    }
}

fn ca_certs(certs: &[Vec<u8>], content_type: &'static str) -> Response {
    match certs::degenerate(certs, &[]) {
        Ok(der) => (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], der).into_response(),
        Err(e) => error(ScepError::Internal(e.to_string())),
    }
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut r = (status, format!("{body}\n")).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn error(e: ScepError) -> Response {
    match e {
        ScepError::Undecodable(detail) => text(StatusCode::BAD_REQUEST, &detail),
        ScepError::Fail(_, detail) => text(StatusCode::BAD_REQUEST, &detail),
        ScepError::Internal(detail) => {
            tracing::error!(detail = %detail, "SCEP request failed inside privca");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
        ScepError::Busy => {
            let mut r = text(StatusCode::SERVICE_UNAVAILABLE, "busy, retry later");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(crate::error::BUSY_RETRY_AFTER));
            r
        }
        ScepError::Unavailable => {
            let mut r = text(StatusCode::SERVICE_UNAVAILABLE, "unavailable, retry later");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(crate::error::UNAVAILABLE_RETRY_AFTER));
            r
        }
    }
}

/// One PKIOperation: decode, verify, decrypt, dispatch, answer with a signed CertRep.
async fn pki_operation<B: ScepBackend>(s: &St<B>, name: &str, der: &[u8], peer: Option<IpAddr>) -> Response {
    let request = match message::parse(der) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let ra = match s.ra_certificates(name).await {
        Ok(ra) => ra,
        Err(e) => return error(e),
    };
    let status = match process(s, name, &request, &ra.encryption, peer).await {
        Ok((outcome, cipher)) => match outcome {
            Outcome::Pending => Status::Pending,
            Outcome::Success { certs, crls } => {
                let sealed = certs::degenerate(&certs, &crls)
                    .map_err(|e| ScepError::Internal(e.to_string()))
                    .and_then(|inner| envelope::seal(&inner, request.signer_certificate(), cipher));
                match sealed {
                    Ok(env) => Status::Success(env),
                    Err(ScepError::Fail(info, text)) => Status::Failure(info, text),
                    Err(e) => return error(e),
                }
            }
        },
        Err(ScepError::Fail(info, text)) => {
            tracing::debug!(%name, transaction = %request.transaction_id, %text, "SCEP request refused");
            Status::Failure(info, text)
        }
        Err(ScepError::Internal(detail)) => {
            tracing::error!(detail = %detail, "SCEP request failed inside privca");
            Status::Failure(FailInfo::BadRequest, "internal error".into())
        }
        Err(e) => return error(e),
    };
    match reply::cert_rep(&s.backend, &ra.signing, &request.transaction_id, &request.sender_nonce, status).await {
        Ok(der) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-pki-message")], Bytes::from(der)).into_response()
        }
        Err(e) => error(e),
    }
}

async fn process<B: ScepBackend>(
    s: &St<B>,
    name: &str,
    request: &message::Request,
    recipient: &RaCertificate,
    peer: Option<IpAddr>,
) -> Result<(Outcome, envelope::ContentCipher), ScepError> {
    let kind = request
        .message_type
        .clone()
        .map_err(|t| ScepError::fail(FailInfo::BadRequest, format!("messageType {t} is not supported")))?;
    request.verify()?;
    let sealed = envelope::decode(
        request.envelope.as_deref().ok_or_else(|| ScepError::fail(FailInfo::BadRequest, "no pkcsPKIEnvelope"))?,
        recipient.certificate(),
        s.settings.single_des.contains(name),
    )?;
    let content = open(s, &sealed, kind, peer).await?;
    let outcome = match kind {
        MessageType::PkcsReq | MessageType::RenewalReq => {
            s.backend
                .enroll(PkiRequest {
                    name: name.to_owned(),
                    transaction_id: request.transaction_id.clone(),
                    csr_der: content,
                    signer_cert_der: request.signer_cert.clone(),
                    renewal: kind == MessageType::RenewalReq,
                })
                .await?
        }
        MessageType::CertPoll => s.backend.poll(name, &request.transaction_id).await?,
        MessageType::GetCert => {
            let (issuer, serial) = message::issuer_and_serial(&content)?;
            s.backend.get_cert(&issuer, &serial).await?
        }
        MessageType::GetCrl => {
            let (issuer, serial) = message::issuer_and_serial(&content)?;
            s.backend.get_crl(&issuer, &serial).await?
        }
    };
    Ok((outcome, sealed.cipher))
}

/// The envelope's content, decoded as `kind`'s, or [`rejection::unopenable`] whatever the
/// cause: the RA key's refusal, a key of the wrong size, a bad CBC padding or content that is
/// not what `kind` carries all fail at the same step (implicit rejection).
async fn open<B: ScepBackend>(
    s: &St<B>,
    sealed: &envelope::Sealed,
    kind: MessageType,
    peer: Option<IpAddr>,
) -> Result<Vec<u8>, ScepError> {
    // Busy is the queue's refusal before any decryption: it depends on the load, never on the
    // ciphertext, so answering it apart (HTTP 503) tells nothing about the padding.
    let recovered = match s.backend.ra_decrypt(&sealed.encrypted_key).await {
        Ok(key) => Some(key),
        Err(ScepError::Busy) => return Err(ScepError::Busy),
        // The HSM failed, whatever the ciphertext: not the client's envelope.
        Err(ScepError::Unavailable) => return Err(ScepError::Unavailable),
        Err(_) => None,
    };
    let content = sealed.open(recovered.as_deref(), &s.settings.rejection).ok().filter(|c| kind.content_decodes(c));
    content.ok_or_else(|| {
        metrics::counter!("privca_scep_envelope_failures_total").increment(1);
        s.backend.envelope_failed(peer);
        rejection::unopenable()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_and_slash_survive_and_whitespace_is_dropped() {
        let q = "operation=PKIOperation&message=MII+a/b%3D%3D%0Acd";
        assert_eq!(query_param(q, "message").unwrap(), b"MII+a/b==\ncd");
        assert_eq!(query_param(q, "operation").unwrap(), b"PKIOperation");
        assert_eq!(decode_message(b"AQID\nBA==").unwrap(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn busy_is_a_503_with_retry_after() {
        let r = error(ScepError::Busy);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn any_sub_path_names_the_profile() {
        assert_eq!(name_of("/scep", "/scep"), "default");
        assert_eq!(name_of("/scep/pkiclient.exe", "/scep"), "default");
        assert_eq!(name_of("/scep/vpn/pkiclient.exe", "/scep"), "vpn");
        assert_eq!(name_of("/scep/router", "/scep"), "router");
    }
}
