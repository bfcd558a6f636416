//! tls-alpn-01 (RFC 8737): a TLS handshake offering only ALPN `acme-tls/1`, SNI = the domain
//! (for IP identifiers the reverse-DNS name, RFC 8738 §6), whose self-signed certificate has
//! exactly the identifier in its subjectAltName and a critical id-pe-acmeIdentifier extension
//! holding SHA-256 of the key authorization. Extra non-critical extensions are tolerated
//! (the RFC does not forbid them; boulder's stricter shape is not required).
//! Connection failures and denied addresses give the generic problem of
//! [`super::unreachable`]; a failed handshake is a `tls` problem that names no address or cause.

use std::{net::IpAddr, sync::Arc};

use der::{asn1::OctetString, Decode};
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
    DigitallySignedStruct, SignatureScheme,
};
use tokio::net::TcpStream;
use x509_cert::{
    ext::pkix::{name::GeneralName, SubjectAltName},
    Certificate,
};

use super::Validator;
use crate::{
    backend::{ChallengeType, Identifier},
    error::{AcmeError, ErrorType},
};

/// id-pe-acmeIdentifier.
const ACME_IDENTIFIER: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");
const SUBJECT_ALT_NAME: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.29.17");
pub(super) const ALPN: &[u8] = b"acme-tls/1";

/// Accepts any certificate chain (the challenge certificate is self-signed by design, and its
/// critical acmeIdentifier extension is unknown to webpki; http-01 redirects to `https:` are
/// followed without certificate validation, as boulder does) but still checks the handshake
/// signature against the certificate's key.
#[derive(Debug)]
struct ChallengeCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ChallengeCertificate {
    fn verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        let cert = Certificate::from_der(cert.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        let spki = &cert.tbs_certificate.subject_public_key_info;
        let alg_id = der::Encode::to_der(&spki.algorithm).map_err(|_| bad())?;
        // AlgorithmIdentifier without its SEQUENCE header, as pki-types' AlgorithmIdentifier holds it.
        let alg_body = der::asn1::AnyRef::from_der(&alg_id).map(|a| a.value().to_vec()).map_err(|_| bad())?;
        let key = spki.subject_public_key.as_bytes().ok_or_else(bad)?;
        let algorithms = self
            .0
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(rustls::Error::PeerMisbehaved(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme))?;
        for alg in algorithms {
            if alg.public_key_alg_id().as_ref() == alg_body.as_slice()
                && alg.verify_signature(key, message, dss.signature()).is_ok()
            {
                return Ok(HandshakeSignatureValid::assertion());
            }
        }
        Err(bad())
    }
}

impl ServerCertVerifier for ChallengeCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client (1.2 and 1.3, ring) that offers only the ALPN protocol `alpn` and accepts any
/// certificate ([`ChallengeCertificate`]).
pub(super) fn client_config(alpn: &[u8]) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls-alpn-01 client: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChallengeCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config.enable_sni = true;
    Ok(config)
}

/// The SNI for an identifier: the name, or the reverse-DNS name of an IP (RFC 8738 §6).
fn server_name(identifier: &Identifier) -> Result<ServerName<'static>, AcmeError> {
    let name = match identifier.value.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            let o = ip.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        Ok(IpAddr::V6(ip)) => {
            let mut labels: Vec<String> =
                ip.octets().iter().flat_map(|b| [format!("{:x}", b >> 4), format!("{:x}", b & 0xf)]).collect();
            labels.reverse();
            format!("{}.ip6.arpa", labels.join("."))
        }
        Err(_) => identifier.value.clone(),
    };
    ServerName::try_from(name).map_err(|_| AcmeError::malformed("identifier is not a valid TLS server name"))
}

pub(super) async fn validate(v: &Validator, identifier: &Identifier, key_authorization: &str) -> Result<(), AcmeError> {
    const KIND: ChallengeType = ChallengeType::TlsAlpn01;
    let ips = v.addresses(KIND, identifier).await?;
    let sni = server_name(identifier)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&v.tls));
    let mut causes = Vec::new();
    for ip in ips {
        let addr = std::net::SocketAddr::new(ip, v.settings.tlsalpn01_port);
        let tcp = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                causes.push(format!("{addr}: {e}"));
                continue;
            }
        };
        let tls = connector.connect(sni.clone(), tcp).await.map_err(|e| {
            tracing::debug!(identifier = %identifier.value, %addr, error = %e, "tls-alpn-01 handshake failed");
            AcmeError::new(ErrorType::Tls, format!("tls-alpn-01: the TLS handshake with {} failed", identifier.value))
        })?;
        let (_, session) = tls.get_ref();
        if session.alpn_protocol() != Some(ALPN) {
            return Err(AcmeError::unauthorized("tls-alpn-01: the server did not negotiate acme-tls/1"));
        }
        let cert = session.peer_certificates().and_then(|c| c.first()).ok_or_else(|| {
            AcmeError::new(ErrorType::Tls, format!("tls-alpn-01: {} presented no certificate", identifier.value))
        })?;
        return check_certificate(cert.as_ref(), identifier, key_authorization);
    }
    Err(super::unreachable(KIND, identifier, &format!("cannot connect: {}", causes.join("; "))))
}

/// RFC 8737 §3 checks on the presented certificate.
pub(crate) fn check_certificate(der: &[u8], identifier: &Identifier, key_authorization: &str) -> Result<(), AcmeError> {
    let bad = |d: &str| AcmeError::unauthorized(format!("tls-alpn-01: {d}"));
    let cert = Certificate::from_der(der).map_err(|_| bad("the certificate does not parse"))?;
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    let san = extensions.iter().find(|e| e.extn_id == SUBJECT_ALT_NAME).ok_or_else(|| bad("no subjectAltName"))?;
    let san = SubjectAltName::from_der(san.extn_value.as_bytes()).map_err(|_| bad("subjectAltName does not parse"))?;
    let matches = match (san.0.as_slice(), identifier.value.parse::<IpAddr>()) {
        ([GeneralName::DnsName(n)], Err(_)) => n.as_str().eq_ignore_ascii_case(&identifier.value),
        ([GeneralName::IpAddress(o)], Ok(ip)) => {
            let octets = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            o.as_bytes() == octets.as_slice()
        }
        _ => false,
    };
    if !matches {
        return Err(bad("subjectAltName must hold exactly the identifier"));
    }
    let acme =
        extensions.iter().find(|e| e.extn_id == ACME_IDENTIFIER).ok_or_else(|| bad("no acmeIdentifier extension"))?;
    if !acme.critical {
        return Err(bad("the acmeIdentifier extension must be critical"));
    }
    let value = OctetString::from_der(acme.extn_value.as_bytes()).map_err(|_| bad("acmeIdentifier does not parse"))?;
    let expected = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    if value.as_bytes() != expected.as_ref() {
        return Err(AcmeError::new(
            ErrorType::IncorrectResponse,
            "tls-alpn-01: acmeIdentifier does not match the key authorization",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_for_ip_identifiers() {
        let id = |v: &str| Identifier { kind: "ip".into(), value: v.into() };
        assert_eq!(
            format!("{:?}", server_name(&id("1.2.3.4")).unwrap()),
            format!("{:?}", ServerName::try_from("4.3.2.1.in-addr.arpa").unwrap())
        );
        let v6 = server_name(&id("2001:db8::1")).unwrap();
        assert!(format!("{v6:?}").contains("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"));
    }
}
