//! X.509 building blocks shared by the issuance cycle and CA bootstrap: times (UTCTime before
//! 2050, GeneralizedTime after, RFC 5280 §4.1.2.5), key identifiers (RFC 7093 method 1),
//! extension encoding and PEM.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use const_oid::AssociatedOid;
use der::{
    asn1::{GeneralizedTime, Ia5String, OctetString, UtcTime},
    Decode, Encode,
};
use x509_cert::{
    ext::{
        pkix::{
            name::{DistributionPointName, GeneralName},
            AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CrlDistributionPoints,
            SubjectKeyIdentifier,
        },
        Extension,
    },
    time::Time,
    Certificate,
};

use crate::error::CaError;

/// First instant that must be encoded as GeneralizedTime (2050-01-01T00:00:00Z).
const Y2050: u64 = 2_524_608_000;

/// RFC 5280 `Time` for `t`, truncated to whole seconds.
pub fn x509_time(t: SystemTime) -> Result<Time, CaError> {
    let secs = t.duration_since(UNIX_EPOCH).map_err(|_| CaError::internal("time before 1970"))?.as_secs();
    let d = Duration::from_secs(secs);
    let time = if secs < Y2050 {
        UtcTime::from_unix_duration(d).map(Time::UtcTime)
    } else {
        GeneralizedTime::from_unix_duration(d).map(Time::GeneralTime)
    };
    time.map_err(|e| CaError::internal("time encoding").with_source(e))
}

/// Unix seconds of an X.509 time.
pub fn unix(t: &Time) -> i64 {
    t.to_unix_duration().as_secs() as i64
}

/// Key identifier: leftmost 160 bits of SHA-256 over the subjectPublicKey bits (RFC 7093 §2 (1)).
pub fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, CaError> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| CaError::bad_request("malformed public key").with_source(e))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, spki.subject_public_key.raw_bytes());
    Ok(digest.as_ref()[..20].to_vec())
}

/// Encodes an extension value.
pub fn extension<T: AssociatedOid + Encode>(value: &T, critical: bool) -> Result<Extension, CaError> {
    let bytes = value.to_der().map_err(|e| CaError::internal("extension encoding").with_source(e))?;
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(bytes).map_err(|e| CaError::internal("extension encoding").with_source(e))?,
    })
}

/// subjectKeyIdentifier.
pub fn ski_extension(ski: &[u8]) -> Result<Extension, CaError> {
    let v = OctetString::new(ski.to_vec()).map_err(|e| CaError::internal("SKI").with_source(e))?;
    extension(&SubjectKeyIdentifier(v), false)
}

/// authorityKeyIdentifier with only the key identifier.
pub fn aki_extension(issuer_ski: &[u8]) -> Result<Extension, CaError> {
    let v = OctetString::new(issuer_ski.to_vec()).map_err(|e| CaError::internal("AKI").with_source(e))?;
    extension(
        &AuthorityKeyIdentifier {
            key_identifier: Some(v),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )
}

/// An IA5 URI general name.
pub fn uri(u: &str) -> Result<GeneralName, CaError> {
    Ia5String::new(u)
        .map(GeneralName::UniformResourceIdentifier)
        .map_err(|e| CaError::internal(format!("URL `{u}` is not IA5")).with_source(e))
}

/// cRLDistributionPoints with one full-name URI.
pub fn cdp_extension(url: &str) -> Result<Extension, CaError> {
    let dp = x509_cert::ext::pkix::crl::dp::DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
        reasons: None,
        crl_issuer: None,
    };
    extension(&CrlDistributionPoints(vec![dp]), false)
}

/// authorityInfoAccess with optional OCSP and caIssuers URIs.
pub fn aia_extension(ocsp: Option<&str>, ca_issuers: Option<&str>) -> Result<Option<Extension>, CaError> {
    let mut access = Vec::new();
    if let Some(u) = ocsp {
        access.push(AccessDescription { access_method: const_oid::db::rfc5280::ID_AD_OCSP, access_location: uri(u)? });
    }
    if let Some(u) = ca_issuers {
        access.push(AccessDescription {
            access_method: const_oid::db::rfc5280::ID_AD_CA_ISSUERS,
            access_location: uri(u)?,
        });
    }
    if access.is_empty() {
        return Ok(None);
    }
    extension(&AuthorityInfoAccessSyntax(access), false).map(Some)
}

/// The subjectKeyIdentifier of a certificate, if present.
pub fn certificate_ski(cert: &Certificate) -> Option<Vec<u8>> {
    cert.tbs_certificate.extensions.as_ref()?.iter().find_map(|e| {
        if e.extn_id == SubjectKeyIdentifier::OID {
            SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok().map(|s| s.0.as_bytes().to_vec())
        } else {
            None
        }
    })
}

/// PEM "CERTIFICATE" block of a DER certificate.
pub fn pem(der: &[u8]) -> String {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// Splits a PEM bundle into DER certificates (rustls-pki-types' PEM reader, as `server::tls`
/// and `config` load theirs): other sections and text around them are skipped; a section that
/// does not decode or does not end is an error.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, CaError> {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    CertificateDer::pem_slice_iter(text.as_bytes())
        .map(|cert| {
            cert.map(|c| c.to_vec()).map_err(|e| CaError::bad_request(format!("PEM: bad certificate block: {e}")))
        })
        .collect()
}

/// SHA-256 hex of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_before_2050_generalized_after() {
        let t = x509_time(UNIX_EPOCH + Duration::from_secs(1_800_000_000)).unwrap();
        assert!(matches!(t, Time::UtcTime(_)));
        let t = x509_time(UNIX_EPOCH + Duration::from_secs(Y2050 + 1)).unwrap();
        assert!(matches!(t, Time::GeneralTime(_)));
    }

    #[test]
    fn pem_round_trip() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let text = format!("{}{}", pem(&der), pem(&der));
        assert_eq!(pem_certificates(&text).unwrap(), vec![der.clone(), der.clone()]);
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            pem_certificates(&format!("junk\n{key}{}", pem(&der))).unwrap(),
            vec![der],
            "other sections skipped"
        );
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\nMIIB\n").is_err(), "unterminated");
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").is_err());
        assert_eq!(pem_certificates("no PEM here").unwrap(), Vec::<Vec<u8>>::new());
    }
}
