//! `[admin]`: optional TLS client-certificate login on the admin listener. `client_ca` names a
//! PEM file of the CAs whose client certificates may log in; `[admin.client_certs]` maps each
//! local user to the one certificate that is theirs, by SHA-256 fingerprint, exact RFC 4514
//! subject, or subjectAltName. The CA file is read and the verifier built here, once, so that
//! a missing or unreadable file is a configuration error naming the key.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{pem::PemObject, CertificateDer};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAdmin {
    client_ca: Option<PathBuf>,
    client_certs: BTreeMap<String, String>,
}

/// `[admin]`.
#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    /// Client-certificate login (absent: the admin listener asks for no certificate).
    pub client_auth: Option<ClientAuth>,
}

/// Client-certificate login: the trusted CAs and which certificate is which user.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// `admin.client_ca`, resolved.
    pub client_ca: PathBuf,
    /// Verifies a presented chain against `client_ca` (signatures, validity, clientAuth EKU).
    pub verifier: Arc<dyn ClientCertVerifier>,
    /// (user, what identifies the user's certificate), in user-name order.
    pub users: Vec<(String, CertMatch)>,
}

/// How `[admin.client_certs]` recognises a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertMatch {
    /// `fingerprint:<SHA-256 of the DER, hex>` (colons allowed).
    Fingerprint(String),
    /// `san:dns:…`, `san:email:…`, `san:ip:…` or `san:uri:…`: one of its subjectAltNames.
    San(String),
    /// `subject:<RFC 4514 DN>`, e.g. `subject:CN=alice,O=Example`: its whole subject.
    Subject(String),
}

impl CertMatch {
    /// Parses a `[admin.client_certs]` value.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, value) = s.split_once(':').ok_or("use fingerprint:HEX, subject:DN or san:TYPE:VALUE")?;
        match kind {
            "fingerprint" => {
                let hex: String = value.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err("a fingerprint is the SHA-256 of the certificate: 64 hex digits".into());
                }
                Ok(CertMatch::Fingerprint(hex))
            }
            "subject" if !value.trim().is_empty() => Ok(CertMatch::Subject(value.trim().to_owned())),
            "san" => match value.split_once(':') {
                Some((t @ ("dns" | "email" | "ip" | "uri"), v)) if !v.is_empty() => {
                    let v = if t == "dns" { v.to_ascii_lowercase() } else { v.to_owned() };
                    Ok(CertMatch::San(format!("{t}:{v}")))
                }
                _ => Err("use san:dns:NAME, san:email:ADDRESS, san:ip:ADDRESS or san:uri:URI".into()),
            },
            _ => Err("use fingerprint:HEX, subject:DN or san:TYPE:VALUE".into()),
        }
    }

    /// Whether a certificate with this fingerprint, RFC 4514 subject and SANs (`dns:…`) is it.
    pub fn matches(&self, fingerprint: &str, subject: &str, sans: &[String]) -> bool {
        match self {
            CertMatch::Fingerprint(f) => f == fingerprint,
            CertMatch::Subject(s) => s == subject,
            CertMatch::San(s) => sans.iter().any(|n| {
                let (t, v) = n.split_once(':').unwrap_or(("", n));
                let n = if t == "dns" { format!("dns:{}", v.to_ascii_lowercase()) } else { n.clone() };
                &n == s
            }),
        }
    }
}

/// Checks `[admin]`; relative paths are under `data_dir`.
pub(crate) fn build(raw: RawAdmin, data_dir: &std::path::Path) -> Result<AdminConfig, ConfigError> {
    let Some(file) = raw.client_ca else {
        if !raw.client_certs.is_empty() {
            return Err(ConfigError::invalid("admin.client_certs", "needs admin.client_ca"));
        }
        return Ok(AdminConfig::default());
    };
    let path = if file.is_absolute() { file } else { data_dir.join(file) };
    let pem = std::fs::read(&path)
        .map_err(|e| ConfigError::invalid("admin.client_ca", format!("cannot read {}: {e}", path.display())))?;
    if raw.client_certs.is_empty() {
        return Err(ConfigError::invalid("admin.client_certs", "map at least one certificate to a user"));
    }
    let mut users = Vec::new();
    for (user, value) in raw.client_certs {
        let key = format!("admin.client_certs.{user}");
        let m = CertMatch::parse(&value).map_err(|e| ConfigError::invalid(&key, e))?;
        users.push((user, m));
    }
    let auth = ClientAuth::new(&pem, path.clone(), users)
        .map_err(|e| ConfigError::invalid("admin.client_ca", format!("{}: {e}", path.display())))?;
    Ok(AdminConfig { client_auth: Some(auth) })
}

impl ClientAuth {
    /// Trusts the PEM certificates `client_ca_pem` (read from `client_ca`) for `users`.
    pub fn new(client_ca_pem: &[u8], client_ca: PathBuf, users: Vec<(String, CertMatch)>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(client_ca_pem) {
            let cert = cert.map_err(|e| format!("not PEM certificates: {e}"))?;
            roots.add(cert).map_err(|e| format!("not a usable trust anchor: {e}"))?;
        }
        if roots.is_empty() {
            return Err("holds no certificate".into());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("client verifier: {e}"))?;
        Ok(ClientAuth { client_ca, verifier, users })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_fingerprint_subject_or_san() {
        let fp = "AB:".repeat(31) + "AB";
        let m = CertMatch::parse(&format!("fingerprint:{fp}")).unwrap();
        assert!(m.matches(&"ab".repeat(32), "CN=x", &[]));
        assert!(!m.matches(&"cd".repeat(32), "CN=x", &[]));
        let m = CertMatch::parse("subject:CN=alice,O=Example").unwrap();
        assert!(m.matches("", "CN=alice,O=Example", &[]));
        assert!(!m.matches("", "CN=alice,O=Example,C=FR", &[]));
        let m = CertMatch::parse("san:dns:Alice.Example.test").unwrap();
        assert!(m.matches("", "", &["dns:alice.example.TEST".into()]));
        assert!(!m.matches("", "", &["email:alice.example.test".into()]));
        for bad in ["fingerprint:abc", "subject:", "san:x:y", "san:dns:", "alice", "cn:alice"] {
            assert!(CertMatch::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_mapping_needs_a_ca_and_a_ca_needs_a_mapping() {
        let dir = std::env::temp_dir();
        let raw = RawAdmin { client_ca: None, client_certs: [("a".into(), "subject:CN=a".into())].into() };
        assert!(build(raw, &dir).is_err());
        let raw = RawAdmin { client_ca: Some("/nonexistent/ca.pem".into()), client_certs: BTreeMap::new() };
        assert!(build(raw, &dir).unwrap_err().to_string().contains("admin.client_ca"));
        assert!(build(RawAdmin::default(), &dir).unwrap().client_auth.is_none());
    }
}
