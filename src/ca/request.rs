//! What a caller asks the CA for: a parsed and signature-checked CSR (or, for privca's own
//! keys, a bare public key), the requested names, the profile, and who is asking.

use std::{fmt, net::IpAddr};

use const_oid::{db::rfc5912, AssociatedOid, ObjectIdentifier};
use der::{asn1::Any, Decode, Encode, Tag, Tagged};
use x509_cert::{
    ext::pkix::{name::GeneralName, SubjectAltName},
    name::Name,
    request::{CertReq, ExtensionReq},
};

use crate::error::CaError;

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// dNSName (lowercased).
    Dns(String),
    /// rfc822Name.
    Email(String),
    /// iPAddress.
    Ip(IpAddr),
    /// uniformResourceIdentifier.
    Uri(String),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(n) => write!(f, "dns:{n}"),
            San::Email(n) => write!(f, "email:{n}"),
            San::Ip(n) => write!(f, "ip:{n}"),
            San::Uri(n) => write!(f, "uri:{n}"),
        }
    }
}

/// Who is asking: protocol and identity, e.g. `cli:root` or `acme:account/7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// `cli`, `system`, `acme`, `est`, `scep`, `admin`.
    pub protocol: &'static str,
    /// Identity within the protocol.
    pub identity: String,
}

impl Requester {
    /// A CLI operator.
    pub fn cli() -> Self {
        let user = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into());
        Self { protocol: "cli", identity: user }
    }

    /// privca itself (its own TLS certificate, CA bootstrap).
    pub fn system() -> Self {
        Self { protocol: "system", identity: "privca".into() }
    }
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.protocol, self.identity)
    }
}

/// A certificate request, ready for `ca::prepare`.
#[derive(Debug, Clone)]
pub struct IssuanceRequest {
    /// Profile name.
    pub profile: String,
    /// Subject key, DER SPKI.
    pub spki_der: Vec<u8>,
    /// Subject attributes as requested, `(type, value)`.
    pub subject: Vec<(ObjectIdentifier, String)>,
    /// Requested SANs.
    pub sans: Vec<San>,
    /// Who asks.
    pub requester: Requester,
    /// CLM owner override (EAB owner, EST user...).
    pub owner: Option<String>,
    /// Serial of the certificate this one renews.
    pub renews: Option<String>,
    /// The CSR, kept for the approval queue.
    pub csr_der: Option<Vec<u8>>,
    /// Set when an operator already approved this request.
    pub approval_id: Option<i64>,
    /// The ACME order this request finalizes; the ledger moves it with the issuance (see
    /// `ledger::Reservation::acme_order`).
    pub acme_order: Option<String>,
    /// See `ledger::Reservation::one_per_requester`.
    pub one_per_requester: bool,
}

impl IssuanceRequest {
    /// A certificate for one of privca's own keys in the token (`spki_der`), under a built-in
    /// `profile` that fixes subject and extensions: the delegated OCSP responders, the SCEP RA.
    pub fn own_key(profile: &str, spki_der: Vec<u8>) -> Self {
        Self {
            profile: profile.to_owned(),
            spki_der,
            subject: Vec::new(),
            sans: Vec::new(),
            requester: Requester::system(),
            owner: Some("privca".into()),
            renews: None,
            csr_der: None,
            approval_id: None,
            acme_order: None,
            one_per_requester: false,
        }
    }

    /// Parses a DER PKCS#10 CSR and checks its signature.
    pub fn from_csr(der: &[u8], profile: &str, requester: Requester) -> Result<Self, CaError> {
        let csr = ParsedCsr::parse(der)?;
        Ok(Self {
            profile: profile.to_owned(),
            spki_der: csr.spki_der,
            subject: csr.subject,
            sans: csr.sans,
            requester,
            owner: None,
            renews: None,
            csr_der: Some(der.to_vec()),
            approval_id: None,
            acme_order: None,
            one_per_requester: false,
        })
    }
}

/// A PKCS#10 request whose signature verified.
#[derive(Debug, Clone)]
pub struct ParsedCsr {
    /// DER SPKI.
    pub spki_der: Vec<u8>,
    /// Subject attributes.
    pub subject: Vec<(ObjectIdentifier, String)>,
    /// SANs from the extensionRequest attribute.
    pub sans: Vec<San>,
}

impl ParsedCsr {
    /// Decodes `der` and verifies the CSR's self-signature (proof of possession).
    pub fn parse(der: &[u8]) -> Result<Self, CaError> {
        let csr = CertReq::from_der(der)
            .map_err(|e| CaError::bad_request("CSR: not a DER PKCS#10 request").with_source(e))?;
        let info = csr.info.to_der().map_err(|e| CaError::bad_request("CSR: cannot re-encode").with_source(e))?;
        let spki_der =
            csr.info.public_key.to_der().map_err(|e| CaError::bad_request("CSR: bad public key").with_source(e))?;
        let signature =
            csr.signature.as_bytes().ok_or_else(|| CaError::bad_request("CSR: signature has unused bits"))?;
        verify_csr_signature(&spki_der, &csr.algorithm, &info, signature)?;
        Ok(Self { subject: name_attributes(&csr.info.subject)?, sans: requested_sans(&csr)?, spki_der })
    }
}

fn verify_csr_signature(
    spki_der: &[u8],
    algorithm: &spki::AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CaError> {
    use crate::signer::KeyAlgorithm as K;
    use ring::signature as rs;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| CaError::bad_request("CSR: bad public key").with_source(e))?;
    let key = match K::from_spki(&spki) {
        Some(k) => k,
        // Keys privca cannot use (weak RSA, odd curves) cannot be checked here; the key policy
        // refuses them in `prepare`, where the refusal is audited.
        None => return Ok(()),
    };
    let oid = algorithm.oid;
    let verifier: &dyn rs::VerificationAlgorithm = match (oid, key) {
        (o, K::EcdsaP256) if o == rfc5912::ECDSA_WITH_SHA_256 => &rs::ECDSA_P256_SHA256_ASN1,
        (o, K::EcdsaP256) if o == rfc5912::ECDSA_WITH_SHA_384 => &rs::ECDSA_P256_SHA384_ASN1,
        (o, K::EcdsaP384) if o == rfc5912::ECDSA_WITH_SHA_256 => &rs::ECDSA_P384_SHA256_ASN1,
        (o, K::EcdsaP384) if o == rfc5912::ECDSA_WITH_SHA_384 => &rs::ECDSA_P384_SHA384_ASN1,
        (o, K::Ed25519) if o == const_oid::db::rfc8410::ID_ED_25519 => &rs::ED25519,
        (o, k) if k.is_rsa() && o == rfc5912::SHA_256_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_2048_8192_SHA256,
        (o, k) if k.is_rsa() && o == rfc5912::SHA_384_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_2048_8192_SHA384,
        (o, k) if k.is_rsa() && o == rfc5912::SHA_512_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_2048_8192_SHA512,
        (o, k) if k.is_rsa() && o == rfc5912::ID_RSASSA_PSS => pss_verifier(algorithm)?,
        _ => {
            return Err(CaError::bad_request(format!(
                "CSR: signature algorithm {oid} is not supported with a {} key",
                key.name()
            )))
        }
    };
    let public_key = spki.subject_public_key.raw_bytes();
    rs::UnparsedPublicKey::new(verifier, public_key)
        .verify(message, signature)
        .map_err(|_| CaError::bad_request("CSR: signature does not verify (proof of possession failed)"))
}

fn pss_verifier(
    algorithm: &spki::AlgorithmIdentifierOwned,
) -> Result<&'static dyn ring::signature::VerificationAlgorithm, CaError> {
    use ring::signature as rs;
    let params = algorithm.parameters.as_ref().and_then(|p| p.to_der().ok()).unwrap_or_default();
    let has = |oid: ObjectIdentifier| {
        oid.to_der().map(|d| params.windows(d.len()).any(|w| w == d.as_slice())).unwrap_or(false)
    };
    if has(rfc5912::ID_SHA_512) {
        Ok(&rs::RSA_PSS_2048_8192_SHA512)
    } else if has(rfc5912::ID_SHA_384) {
        Ok(&rs::RSA_PSS_2048_8192_SHA384)
    } else if has(rfc5912::ID_SHA_256) {
        Ok(&rs::RSA_PSS_2048_8192_SHA256)
    } else {
        Err(CaError::bad_request("CSR: RSASSA-PSS with an unsupported hash"))
    }
}

/// The attributes of a name as `(type, string value)`.
pub fn name_attributes(name: &Name) -> Result<Vec<(ObjectIdentifier, String)>, CaError> {
    let mut out = Vec::new();
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            out.push((atv.oid, directory_string(&atv.value)?));
        }
    }
    Ok(out)
}

fn directory_string(value: &Any) -> Result<String, CaError> {
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            String::from_utf8(value.value().to_vec())
                .map_err(|_| CaError::bad_request("CSR: subject value is not UTF-8"))
        }
        other => Err(CaError::bad_request(format!("CSR: subject value of type {other} is not supported"))),
    }
}

fn requested_sans(csr: &CertReq) -> Result<Vec<San>, CaError> {
    let mut sans = Vec::new();
    for attr in csr.info.attributes.iter() {
        if attr.oid != ExtensionReq::OID {
            continue;
        }
        for value in attr.values.iter() {
            let req: ExtensionReq = value
                .decode_as()
                .map_err(|e| CaError::bad_request("CSR: malformed extensionRequest").with_source(e))?;
            for ext in req.0 {
                if ext.extn_id != SubjectAltName::OID {
                    continue;
                }
                let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| CaError::bad_request("CSR: malformed subjectAltName").with_source(e))?;
                for name in san.0 {
                    sans.push(general_name(&name)?);
                }
            }
        }
    }
    Ok(sans)
}

fn general_name(name: &GeneralName) -> Result<San, CaError> {
    Ok(match name {
        GeneralName::DnsName(n) => San::Dns(n.as_str().to_ascii_lowercase()),
        GeneralName::Rfc822Name(n) => San::Email(n.as_str().to_owned()),
        GeneralName::UniformResourceIdentifier(n) => San::Uri(n.as_str().to_owned()),
        GeneralName::IpAddress(o) => match o.as_bytes().len() {
            4 => {
                let b: [u8; 4] = o.as_bytes().try_into().map_err(|_| CaError::bad_request("CSR: bad IP"))?;
                San::Ip(IpAddr::from(b))
            }
            16 => {
                let b: [u8; 16] = o.as_bytes().try_into().map_err(|_| CaError::bad_request("CSR: bad IP"))?;
                San::Ip(IpAddr::from(b))
            }
            _ => return Err(CaError::bad_request("CSR: iPAddress SAN must be 4 or 16 bytes")),
        },
        _ => return Err(CaError::policy("CSR: only dNSName, iPAddress, rfc822Name and URI SANs are supported")),
    })
}
