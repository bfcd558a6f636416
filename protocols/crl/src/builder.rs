//! `TBSCertList` encoding (RFC 5280 §5.1) that streams: each revoked entry is encoded as it
//! arrives and appended to one byte buffer, so building a CRL costs its own size in memory, not
//! an object per entry. Extensions: authorityKeyIdentifier (§5.2.1), cRLNumber (§5.2.3),
//! issuingDistributionPoint (§5.2.5, critical), freshestCRL (§5.2.6) on complete CRLs and
//! deltaCRLIndicator (§5.2.4, critical) on delta CRLs; entry reasonCode (§5.3.1, omitted for
//! `unspecified`) and invalidityDate (§5.3.2).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::{
    asn1::{BitString, GeneralizedTime, Ia5String, OctetString, Uint, UtcTime},
    Encode, Header, Length, Tag, TagNumber,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::{
    crl::RevokedCert,
    ext::{
        pkix::{
            crl::{dp::DistributionPoint, BaseCrlNumber, CrlNumber, FreshestCrl, IssuingDistributionPoint},
            name::{DistributionPointName, GeneralName},
            AuthorityKeyIdentifier,
        },
        AsExtension, Extension,
    },
    name::Name,
    serial_number::SerialNumber,
    time::Time,
};

use crate::CrlError;

/// Which certificates a CRL covers (the IDP `onlyContains…` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlScope {
    /// End-entity certificates of an issuing CA.
    UserCerts,
    /// CA certificates (the root's CRL over its intermediates).
    CaCerts,
}

/// Complete or delta CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlKind {
    /// A complete CRL, optionally pointing at its delta CRL (freshestCRL).
    Full {
        /// URL of the delta CRL.
        freshest: Option<String>,
    },
    /// A delta CRL over the complete CRL numbered `base`.
    Delta {
        /// cRLNumber of the base complete CRL.
        base: u64,
    },
}

/// Everything about a CRL but its entries.
#[derive(Debug, Clone)]
pub struct CrlParams {
    /// Issuer name, byte-identical to the issuer certificate's subject.
    pub issuer: Name,
    /// Signature algorithm (also the outer `signatureAlgorithm`).
    pub signature: AlgorithmIdentifierOwned,
    /// thisUpdate.
    pub this_update: SystemTime,
    /// nextUpdate (always present, §5.1.2.5).
    pub next_update: SystemTime,
    /// cRLNumber.
    pub number: u64,
    /// The issuer's subjectKeyIdentifier.
    pub authority_key_id: Vec<u8>,
    /// The distribution point URL (matches the certificates' CDP).
    pub distribution_point: String,
    /// Certificates covered.
    pub scope: CrlScope,
    /// Complete or delta.
    pub kind: CrlKind,
}

/// One revoked certificate.
#[derive(Debug, Clone)]
pub struct RevokedEntry<'a> {
    /// Serial number: the INTEGER's content octets (big-endian, positive).
    pub serial: &'a [u8],
    /// revocationDate.
    pub revocation_time: SystemTime,
    /// RFC 5280 CRLReason code; `None` or `Some(0)` omits the extension.
    pub reason: Option<u8>,
    /// invalidityDate.
    pub invalidity_date: Option<SystemTime>,
}

/// Builds a `TBSCertList` from streamed entries.
#[derive(Debug)]
pub struct TbsCrlBuilder {
    params: CrlParams,
    entries: Vec<u8>,
    count: u64,
}

/// OID of the invalidityDate entry extension (RFC 5280 §5.3.2).
const ID_CE_INVALIDITY_DATE: const_oid::ObjectIdentifier = const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE;

impl TbsCrlBuilder {
    /// Starts a CRL.
    pub fn new(params: CrlParams) -> Self {
        Self { params, entries: Vec::new(), count: 0 }
    }

    /// Appends one revoked certificate.
    pub fn push(&mut self, entry: &RevokedEntry<'_>) -> Result<(), CrlError> {
        let der = encode_entry(entry)?;
        self.push_encoded(&der, 1);
        Ok(())
    }

    /// Appends `count` entries already DER-encoded by [`encode_entry`], back to back.
    pub fn push_encoded(&mut self, entries_der: &[u8], count: u64) {
        self.entries.extend_from_slice(entries_der);
        self.count += count;
    }

    /// Entries pushed so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when no entry was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The DER `TBSCertList` (what the CA signs).
    pub fn finish(self) -> Result<Vec<u8>, CrlError> {
        let p = &self.params;
        let mut body = Vec::with_capacity(self.entries.len() + 512);
        1u8.encode_to_vec(&mut body)?; // version v2
        p.signature.encode_to_vec(&mut body)?;
        p.issuer.encode_to_vec(&mut body)?;
        time(p.this_update)?.encode_to_vec(&mut body)?;
        time(p.next_update)?.encode_to_vec(&mut body)?;
        if self.count > 0 {
            // §5.1.2.6: absent, not an empty SEQUENCE, when nothing is revoked.
            header(Tag::Sequence, self.entries.len())?.encode_to_vec(&mut body)?;
            body.extend_from_slice(&self.entries);
        }
        let extensions = self.extensions()?.to_der()?;
        let explicit = Tag::ContextSpecific { constructed: true, number: TagNumber::N0 };
        header(explicit, extensions.len())?.encode_to_vec(&mut body)?;
        body.extend_from_slice(&extensions);
        let mut out = Vec::with_capacity(body.len() + 8);
        header(Tag::Sequence, body.len())?.encode_to_vec(&mut out)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn extensions(&self) -> Result<Vec<Extension>, CrlError> {
        let p = &self.params;
        let issuer = &p.issuer;
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(p.authority_key_id.clone())?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        let mut out = vec![
            aki.to_extension(issuer, &[])?,
            CrlNumber(Uint::new(&p.number.to_be_bytes())?).to_extension(issuer, &[])?,
        ];
        let idp = IssuingDistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![uri(&p.distribution_point)?])),
            only_contains_user_certs: p.scope == CrlScope::UserCerts,
            only_contains_ca_certs: p.scope == CrlScope::CaCerts,
            only_some_reasons: None,
            indirect_crl: false,
            only_contains_attribute_certs: false,
        };
        out.push(Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT,
            critical: true,
            extn_value: OctetString::new(idp.to_der()?)?,
        });
        match &p.kind {
            CrlKind::Full { freshest: Some(url) } => {
                let dp = DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
                    reasons: None,
                    crl_issuer: None,
                };
                out.push(FreshestCrl(vec![dp]).to_extension(issuer, &[])?);
            }
            CrlKind::Full { freshest: None } => {}
            CrlKind::Delta { base } => {
                out.push(BaseCrlNumber(Uint::new(&base.to_be_bytes())?).to_extension(issuer, &[])?)
            }
        }
        Ok(out)
    }
}

/// The DER `revokedCertificates` entry for one certificate (computed once, when it is revoked).
pub fn encode_entry(entry: &RevokedEntry<'_>) -> Result<Vec<u8>, CrlError> {
    let mut extensions = Vec::new();
    if let Some(code) = entry.reason.filter(|c| *c != 0) {
        if code > 10 || code == 7 {
            return Err(CrlError::Encoding(format!("reason code {code}")));
        }
        extensions.push(Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_CRL_REASONS,
            critical: false,
            extn_value: OctetString::new(vec![0x0a, 0x01, code])?,
        });
    }
    if let Some(date) = entry.invalidity_date {
        extensions.push(Extension {
            extn_id: ID_CE_INVALIDITY_DATE,
            critical: false,
            extn_value: OctetString::new(GeneralizedTime::from_unix_duration(unix(date))?.to_der()?)?,
        });
    }
    let revoked = RevokedCert {
        serial_number: SerialNumber::new(entry.serial)?,
        revocation_date: time(entry.revocation_time)?,
        crl_entry_extensions: (!extensions.is_empty()).then_some(extensions),
    };
    Ok(revoked.to_der()?)
}

/// Assembles the signed `CertificateList` from the TBS bytes and the signature.
pub fn certificate_list(
    tbs_der: &[u8],
    signature_algorithm: &AlgorithmIdentifierOwned,
    signature: &[u8],
) -> Result<Vec<u8>, CrlError> {
    let mut tail = signature_algorithm.to_der()?;
    BitString::from_bytes(signature)?.encode_to_vec(&mut tail)?;
    let mut out = Vec::with_capacity(tbs_der.len() + tail.len() + 8);
    header(Tag::Sequence, tbs_der.len() + tail.len())?.encode_to_vec(&mut out)?;
    out.extend_from_slice(tbs_der);
    out.extend_from_slice(&tail);
    Ok(out)
}

fn header(tag: Tag, len: usize) -> Result<Header, CrlError> {
    Ok(Header::new(tag, Length::try_from(len)?)?)
}

fn uri(u: &str) -> Result<GeneralName, CrlError> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(u)?))
}

fn unix(t: SystemTime) -> Duration {
    Duration::from_secs(t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}

/// UTCTime through 2049, GeneralizedTime from 2050 (§5.1.2.4).
fn time(t: SystemTime) -> Result<Time, CrlError> {
    let d = unix(t);
    Ok(if d.as_secs() < 2_524_608_000 {
        Time::UtcTime(UtcTime::from_unix_duration(d)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_unix_duration(d)?)
    })
}

#[cfg(test)]
mod tests {
    use der::Decode;
    use x509_cert::crl::{CertificateList, TbsCertList};

    use super::*;

    fn params(kind: CrlKind) -> CrlParams {
        CrlParams {
            issuer: "CN=test issuer".parse().unwrap(),
            signature: AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256, parameters: None },
            this_update: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            next_update: UNIX_EPOCH + Duration::from_secs(1_800_086_400),
            number: 300,
            authority_key_id: vec![1; 20],
            distribution_point: "http://127.0.0.1:8080/crl/ec.crl".into(),
            scope: CrlScope::UserCerts,
            kind,
        }
    }

    #[test]
    fn streamed_encoding_decodes_as_a_crl() {
        let mut b = TbsCrlBuilder::new(params(CrlKind::Full { freshest: Some("http://x/crl/ec-delta.crl".into()) }));
        for i in 0..1000u32 {
            let serial = [0x40, (i >> 8) as u8, i as u8];
            let entry = RevokedEntry {
                serial: &serial,
                revocation_time: UNIX_EPOCH + Duration::from_secs(1_799_000_000 + u64::from(i)),
                reason: Some((i % 3) as u8),
                invalidity_date: (i == 5).then_some(UNIX_EPOCH + Duration::from_secs(1_798_000_000)),
            };
            b.push(&entry).unwrap();
        }
        assert_eq!(b.len(), 1000);
        let tbs_der = b.finish().unwrap();
        let tbs = TbsCertList::from_der(&tbs_der).unwrap();
        let revoked = tbs.revoked_certificates.unwrap();
        assert_eq!(revoked.len(), 1000);
        assert!(revoked[0].crl_entry_extensions.is_none(), "unspecified is omitted");
        assert_eq!(revoked[1].crl_entry_extensions.as_ref().unwrap()[0].extn_value.as_bytes(), &[0x0a, 0x01, 0x01]);
        assert_eq!(revoked[5].crl_entry_extensions.as_ref().unwrap().len(), 2);
        let ext = tbs.crl_extensions.unwrap();
        let ids: Vec<_> = ext.iter().map(|e| e.extn_id.to_string()).collect();
        assert_eq!(ids, ["2.5.29.35", "2.5.29.20", "2.5.29.28", "2.5.29.46"]);
        assert!(ext[2].critical, "IDP is critical");
        let sig = AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256, parameters: None };
        let list = certificate_list(&tbs_der, &sig, &[0x30, 0x00]).unwrap();
        let crl = CertificateList::from_der(&list).unwrap();
        assert_eq!(crl.tbs_cert_list.to_der().unwrap(), tbs_der);
    }

    #[test]
    fn empty_delta_has_no_revoked_sequence_and_a_critical_indicator() {
        let tbs_der = TbsCrlBuilder::new(params(CrlKind::Delta { base: 299 })).finish().unwrap();
        let tbs = TbsCertList::from_der(&tbs_der).unwrap();
        assert!(tbs.revoked_certificates.is_none());
        let ext = tbs.crl_extensions.unwrap();
        let delta = ext.iter().find(|e| e.extn_id.to_string() == "2.5.29.27").unwrap();
        assert!(delta.critical);
        assert_eq!(delta.extn_value.as_bytes(), &[0x02, 0x02, 0x01, 0x2b]);
    }

    #[test]
    fn bad_reason_is_refused() {
        let mut b = TbsCrlBuilder::new(params(CrlKind::Full { freshest: None }));
        let e = RevokedEntry { serial: &[1], revocation_time: UNIX_EPOCH, reason: Some(7), invalidity_date: None };
        assert!(b.push(&e).is_err());
    }
}
