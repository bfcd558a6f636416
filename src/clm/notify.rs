//! Delivery of outbox messages: email over SMTP (lettre: plain, STARTTLS or implicit TLS, with
//! optional AUTH), generic JSON webhooks signed with HMAC-SHA256, Slack- and Teams-compatible
//! incoming-webhook payloads, and SMS through an HTTP gateway. Every message carries its
//! outbox key (email `Message-ID`, webhook `X-Privca-Delivery`), so that a receiver can drop
//! the copy a retry after a crash may send.

use std::time::Duration;

use lettre::{
    message::{header::ContentType, Attachment, MultiPart, SinglePart},
    transport::smtp::authentication::Credentials,
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use ring::hmac;

use crate::{config::clm::ClmConfig, ledger::OutboxMessage};

/// Why a delivery failed. The text is stored in the outbox (`last_error`): it names the
/// channel's problem, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The channel is not configured.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The message cannot be built (bad address).
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The SMTP server refused or could not be reached.
    #[error("SMTP: {0}")]
    Smtp(String),
    /// The HTTP endpoint answered badly or could not be reached.
    #[error("HTTP: {0}")]
    Http(String),
    /// Reading a secret failed.
    #[error("cannot read {0}")]
    Secret(&'static str),
}

/// The channels, ready to send.
#[derive(Clone)]
pub struct Notifier {
    from: String,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    http: reqwest::Client,
    webhook_key: Option<hmac::Key>,
    sms: Option<crate::config::clm::SmsConfig>,
}

/// A file attached to an email.
#[derive(Debug, Clone)]
pub struct EmailFile {
    /// File name.
    pub name: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: &'static str,
    /// Content.
    pub bytes: Vec<u8>,
}

/// An HTTP client of CLM's: rustls on ring with the webpki roots, built here (reqwest is
/// compiled without a crypto provider of its own), no redirects, `timeout` per request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NotifyError::Http(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| NotifyError::Http(e.to_string()))
}

impl Notifier {
    /// Builds the channels of `config` (inside a Tokio runtime: lettre's pool needs one).
    pub fn new(config: &ClmConfig) -> Result<Self, NotifyError> {
        let smtp = match &config.smtp {
            None => None,
            Some(s) => {
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::from_url(&s.url)
                    .map_err(|e| NotifyError::Smtp(format!("clm.smtp.url: {e}")))?
                    .timeout(Some(s.timeout));
                if let (Some(user), Some(password)) = (&s.username, &s.password) {
                    let password = password.read().map_err(|_| NotifyError::Secret("clm.smtp.password"))?;
                    b = b.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
                }
                Some(b.build())
            }
        };
        let webhook_key = match &config.webhook_secret {
            None => None,
            Some(s) => {
                let secret = s.read().map_err(|_| NotifyError::Secret("clm.webhook.secret"))?;
                Some(hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes()))
            }
        };
        let http = http_client(config.webhook_timeout)?;
        Ok(Notifier { from: config.from.clone(), smtp, http, webhook_key, sms: config.sms.clone() })
    }

    /// Sends `m` on its channel.
    pub async fn send(&self, m: &OutboxMessage) -> Result<(), NotifyError> {
        match m.channel.as_str() {
            "email" => self.email(m).await,
            "webhook" => {
                let body = serde_json::json!({
                    "id": m.dedup_key,
                    "event": m.event,
                    "fingerprint": m.fingerprint,
                    "owner": m.owner,
                    "subject": m.subject,
                    "text": m.body,
                });
                self.post(&m.recipient, &m.dedup_key, body.to_string(), true).await
            }
            "slack" => {
                let body = serde_json::json!({ "text": format!("*{}*\n{}", m.subject, m.body) });
                self.post(&m.recipient, &m.dedup_key, body.to_string(), false).await
            }
            "teams" => {
                let body = serde_json::json!({ "title": m.subject, "text": m.body.replace('\n', "\n\n") });
                self.post(&m.recipient, &m.dedup_key, body.to_string(), false).await
            }
            "sms" => {
                let sms =
                    self.sms.as_ref().ok_or(NotifyError::NotConfigured("no SMS gateway configured ([clm.sms])"))?;
                let json = |s: &str| serde_json::to_string(s).map(|q| q[1..q.len() - 1].to_owned()).unwrap_or_default();
                let body = sms
                    .body
                    .replace("{recipient}", &json(&m.recipient))
                    .replace("{subject}", &json(&m.subject))
                    .replace("{body}", &json(&m.body));
                self.post(&sms.url, &m.dedup_key, body, false).await
            }
            other => Err(NotifyError::Invalid(format!("unknown channel `{other}`"))),
        }
    }

    async fn email(&self, m: &OutboxMessage) -> Result<(), NotifyError> {
        let smtp = self.smtp.as_ref().ok_or(NotifyError::NotConfigured("no SMTP server configured ([clm.smtp])"))?;
        let from = self.from.parse().map_err(|e| NotifyError::Invalid(format!("clm.from: {e}")))?;
        let to = m.recipient.parse().map_err(|e| NotifyError::Invalid(format!("recipient `{}`: {e}", m.recipient)))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<{}@privca>", delivery_id(&m.dedup_key))))
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| NotifyError::Invalid(e.to_string()))?;
        smtp.send(message).await.map_err(|e| NotifyError::Smtp(e.to_string()))?;
        Ok(())
    }

    /// Sends `file` by email to `to`, attached to a plain-text `body` (scheduled reports, which
    /// do not go through the outbox); `key` gives the stable `Message-ID`.
    pub async fn email_file(
        &self,
        key: &str,
        to: &str,
        subject: &str,
        body: &str,
        file: EmailFile,
    ) -> Result<(), NotifyError> {
        let smtp = self.smtp.as_ref().ok_or(NotifyError::NotConfigured("no SMTP server configured ([clm.smtp])"))?;
        let from = self.from.parse().map_err(|e| NotifyError::Invalid(format!("clm.from: {e}")))?;
        let to = to.parse().map_err(|e| NotifyError::Invalid(format!("recipient `{to}`: {e}")))?;
        let content_type =
            ContentType::parse(file.content_type).map_err(|e| NotifyError::Invalid(format!("content type: {e}")))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{}@privca>", delivery_id(key))))
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(body.to_owned()))
                    .singlepart(Attachment::new(file.name).body(file.bytes, content_type)),
            )
            .map_err(|e| NotifyError::Invalid(e.to_string()))?;
        smtp.send(message).await.map_err(|e| NotifyError::Smtp(e.to_string()))?;
        Ok(())
    }

    /// POSTs `body` (JSON) to `url`; with `sign`, adds the HMAC-SHA256 signature headers.
    async fn post(&self, url: &str, key: &str, body: String, sign: bool) -> Result<(), NotifyError> {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-privca-delivery", delivery_id(key));
        if sign {
            if let Some(k) = &self.webhook_key {
                let timestamp = crate::ledger::now().to_string();
                req = req
                    .header("x-privca-timestamp", &timestamp)
                    .header("x-privca-signature", format!("sha256={}", signature(k, &timestamp, &body)));
            }
        }
        let response = req.body(body).send().await.map_err(|e| NotifyError::Http(describe(&e)))?;
        if !response.status().is_success() {
            return Err(NotifyError::Http(format!("{url} answered {}", response.status())));
        }
        Ok(())
    }
}

/// The signature of a webhook body: HMAC-SHA256 over `<timestamp>.<body>`, lower-case hex.
pub fn signature(key: &hmac::Key, timestamp: &str, body: &str) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    hex::encode(ctx.sign().as_ref())
}

/// A stable id of an outbox decision (hex of the SHA-256 of its key, 32 characters).
pub fn delivery_id(dedup_key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, dedup_key.as_bytes());
    hex::encode(&digest.as_ref()[..16])
}

/// A reqwest error without the URL's query (which may carry a token).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    match e.url() {
        Some(u) => format!("{}://{}{}: {what}", u.scheme(), u.host_str().unwrap_or(""), u.path()),
        None => what.to_owned(),
    }
}

/// The wait before attempt `attempts + 1`: `backoff` doubled per earlier failure, at most `max`.
pub fn backoff(attempts: i64, backoff: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempts.clamp(0, 30) as u32).unwrap_or(u32::MAX);
    backoff.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = |n| backoff(n, Duration::from_secs(60), Duration::from_secs(3600)).as_secs();
        assert_eq!([b(0), b(1), b(2), b(5), b(6), b(40)], [60, 120, 240, 1920, 3600, 3600]);
    }

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_and_body() {
        // RFC 4231 test case 2 key and data, split as "<timestamp>.<body>".
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let ts = "what do ya want for nothing?";
        let full = hex::encode(hmac::sign(&key, format!("{ts}.x").as_bytes()).as_ref());
        assert_eq!(signature(&key, ts, "x"), full);
        assert_eq!(
            hex::encode(hmac::sign(&key, b"what do ya want for nothing?").as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(delivery_id("expiry:ab:30:email").len(), 32);
    }
}
