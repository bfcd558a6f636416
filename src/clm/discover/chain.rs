//! Where a served chain leads: a path is built from the leaf through the served certificates
//! (and, when the server left one out, privca's own intermediates) to a trusted root, matching
//! names byte for byte and checking each signature with ring, SHA-1 and 1024-bit RSA included
//! (they are findings, not reasons to stop). The trusted roots are privca's own CA certificates
//! and the public webpki roots.

use const_oid::db::rfc5912;
use der::Encode;

use super::certinfo::CertInfo;

/// A trusted root: subject Name and SubjectPublicKeyInfo, both DER.
#[derive(Debug, Clone)]
struct Anchor {
    subject: Vec<u8>,
    spki: Vec<u8>,
}

/// The roots and the known intermediates paths may use.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Anchor>,
    intermediates: Vec<CertInfo>,
    /// Fingerprints of privca's own CA certificates.
    own: Vec<String>,
}

impl TrustStore {
    /// The public webpki roots.
    pub fn webpki() -> TrustStore {
        let anchors = webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .filter_map(|a| {
                Some(Anchor { subject: sequence(&a.subject)?, spki: sequence(&a.subject_public_key_info)? })
            })
            .collect();
        TrustStore { anchors, intermediates: Vec::new(), own: Vec::new() }
    }

    /// Adds privca's CA certificates: self-issued ones as roots, the others as intermediates a
    /// path may borrow.
    pub fn add_own(&mut self, certs: impl IntoIterator<Item = CertInfo>) {
        for c in certs {
            self.own.push(c.fingerprint_sha256.clone());
            if c.self_issued() {
                self.anchors.push(Anchor { subject: c.subject_der.clone(), spki: c.spki_der.clone() });
            } else {
                self.intermediates.push(c);
            }
        }
    }

    /// Adds one trusted root (tests, or an operator's extra roots).
    pub fn add_root(&mut self, cert: &CertInfo) {
        self.anchors.push(Anchor { subject: cert.subject_der.clone(), spki: cert.spki_der.clone() });
    }

    fn anchor_for(&self, cert: &CertInfo) -> bool {
        self.anchors.iter().any(|a| a.subject == cert.issuer_der && signed_by(cert, &a.spki) != Signature::Invalid)
    }

    fn is_anchor(&self, cert: &CertInfo) -> bool {
        self.anchors.iter().any(|a| a.subject == cert.subject_der && a.spki == cert.spki_der)
    }
}

/// Wraps the contents of a DER SEQUENCE (webpki keeps names and keys without their header).
fn sequence(contents: &[u8]) -> Option<Vec<u8>> {
    let header = der::Header::new(der::Tag::Sequence, contents.len()).ok()?;
    let mut out = header.to_der().ok()?;
    out.extend_from_slice(contents);
    Some(out)
}

/// What the chain analysis found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainVerdict {
    /// The leaf signs itself (and is not a trusted root).
    pub self_signed: bool,
    /// No path to a trusted root.
    pub unknown_issuer: bool,
    /// The server left out a certificate the path needs (other than the root).
    pub incomplete: bool,
}

/// Follows the served `chain` (leaf first) to a trusted root.
pub fn analyse(chain: &[CertInfo], trust: &TrustStore) -> ChainVerdict {
    let Some(leaf) = chain.first() else {
        return ChainVerdict { unknown_issuer: true, incomplete: true, ..ChainVerdict::default() };
    };
    if leaf.self_issued() && signed_by(leaf, &leaf.spki_der) != Signature::Invalid {
        return ChainVerdict { self_signed: !trust.is_anchor(leaf), ..ChainVerdict::default() };
    }
    let mut current = leaf;
    let mut used = vec![false; chain.len()];
    used[0] = true;
    let mut borrowed = false;
    for _ in 0..16 {
        if trust.anchor_for(current) {
            return ChainVerdict { incomplete: borrowed, ..ChainVerdict::default() };
        }
        let issues =
            |c: &CertInfo| c.subject_der == current.issuer_der && signed_by(current, &c.spki_der) != Signature::Invalid;
        if let Some(i) = (0..chain.len()).find(|&i| !used[i] && issues(&chain[i])) {
            used[i] = true;
            current = &chain[i];
            if current.self_issued() {
                // A served root that is not trusted.
                return ChainVerdict {
                    unknown_issuer: !trust.is_anchor(current),
                    incomplete: borrowed,
                    ..ChainVerdict::default()
                };
            }
            continue;
        }
        if let Some(c) = trust.intermediates.iter().find(|c| issues(c)) {
            borrowed = true;
            current = c;
            continue;
        }
        // The path stops at a certificate whose issuer nobody knows. Only a served CA
        // certificate may be the last below an omitted root; a bare leaf means its
        // intermediate is missing too, as far as anyone can tell.
        let at_leaf = std::ptr::eq(current, leaf);
        return ChainVerdict { unknown_issuer: true, incomplete: borrowed || at_leaf, ..ChainVerdict::default() };
    }
    ChainVerdict { unknown_issuer: true, incomplete: borrowed, ..ChainVerdict::default() }
}

/// The outcome of a signature check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// It verifies.
    Valid,
    /// It does not.
    Invalid,
    /// ring cannot check this algorithm (e.g. DSA): the names alone decide.
    Unsupported,
}

/// Whether `cert`'s signature verifies under the public key `issuer_spki` (DER).
pub fn signed_by(cert: &CertInfo, issuer_spki: &[u8]) -> Signature {
    verify_signature(&cert.tbs_der, &cert.signature, cert.signature_oid, &cert.signature_params, issuer_spki)
}

/// Whether `signature` over `message` by algorithm `sig` (with its DER `params`) verifies under
/// the public key `issuer_spki` (DER).
pub fn verify_signature(
    message: &[u8],
    signature: &[u8],
    sig: const_oid::ObjectIdentifier,
    params: &[u8],
    issuer_spki: &[u8],
) -> Signature {
    use ring::signature as rs;
    let Ok(spki) = <spki::SubjectPublicKeyInfoRef<'_> as der::Decode<'_>>::from_der(issuer_spki) else {
        return Signature::Invalid;
    };
    let key_oid = spki.algorithm.oid;
    let rsa = key_oid == rfc5912::RSA_ENCRYPTION;
    let ec = key_oid == rfc5912::ID_EC_PUBLIC_KEY;
    let curve = spki.algorithm.parameters.and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
    let p256 = curve == Some(const_oid::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7"));
    let p384 = curve == Some(const_oid::ObjectIdentifier::new_unwrap("1.3.132.0.34"));
    let verifier: &dyn rs::VerificationAlgorithm = match () {
        _ if rsa && sig == rfc5912::SHA_1_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        _ if rsa && sig == rfc5912::SHA_256_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        _ if rsa && sig == rfc5912::SHA_384_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_2048_8192_SHA384,
        _ if rsa && sig == rfc5912::SHA_512_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        _ if rsa && sig == rfc5912::ID_RSASSA_PSS => {
            let has = |oid: const_oid::ObjectIdentifier| {
                oid.to_der().map(|d| params.windows(d.len()).any(|w| w == d.as_slice())).unwrap_or(false)
            };
            if has(rfc5912::ID_SHA_512) {
                &rs::RSA_PSS_2048_8192_SHA512
            } else if has(rfc5912::ID_SHA_384) {
                &rs::RSA_PSS_2048_8192_SHA384
            } else {
                &rs::RSA_PSS_2048_8192_SHA256
            }
        }
        _ if ec && p256 && sig == rfc5912::ECDSA_WITH_SHA_256 => &rs::ECDSA_P256_SHA256_ASN1,
        _ if ec && p256 && sig == rfc5912::ECDSA_WITH_SHA_384 => &rs::ECDSA_P256_SHA384_ASN1,
        _ if ec && p384 && sig == rfc5912::ECDSA_WITH_SHA_256 => &rs::ECDSA_P384_SHA256_ASN1,
        _ if ec && p384 && sig == rfc5912::ECDSA_WITH_SHA_384 => &rs::ECDSA_P384_SHA384_ASN1,
        _ if key_oid == const_oid::db::rfc8410::ID_ED_25519 && sig == const_oid::db::rfc8410::ID_ED_25519 => {
            &rs::ED25519
        }
        _ => return Signature::Unsupported,
    };
    match rs::UnparsedPublicKey::new(verifier, spki.subject_public_key.raw_bytes()).verify(message, signature) {
        Ok(()) => Signature::Valid,
        Err(_) => Signature::Invalid,
    }
}
