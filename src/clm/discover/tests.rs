//! Findings over real certificates (made with rcgen, a dev-dependency; the SHA-1 chain and the
//! weak RSA key are vectors made once with `openssl`, since ring neither signs with SHA-1 nor
//! makes RSA keys), target parsing.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData, SanType};

use super::{
    certinfo::CertInfo,
    chain::TrustStore,
    expand_cidr,
    findings::{evaluate, Context, Finding},
    parse_targets, with_sni, DiscoverError,
};

const DAY: i64 = 86_400;

/// "RSA Root" and under it "sha1.example.test" (sha1WithRSAEncryption, valid to 2126).
const RSA_ROOT: &[u8] = include_bytes!("vectors/rsa-root.der");
const SHA1_LEAF: &[u8] = include_bytes!("vectors/sha1-leaf.der");
/// An RSA-1024 SubjectPublicKeyInfo.
const RSA1024_SPKI: &[u8] = include_bytes!("vectors/rsa1024-spki.der");

fn now() -> i64 {
    crate::ledger::now()
}

fn ec_key() -> KeyPair {
    KeyPair::generate().unwrap()
}

struct Spec<'a> {
    cn: &'a str,
    dns: Option<&'a str>,
    ca: bool,
    not_after: i64,
}

impl<'a> Spec<'a> {
    fn leaf(cn: &'a str) -> Self {
        Spec { cn, dns: Some(cn), ca: false, not_after: now() + 90 * DAY }
    }
    fn ca(cn: &'a str) -> Self {
        Spec { cn, dns: None, ca: true, not_after: now() + 900 * DAY }
    }
}

/// A certificate and the parameters it was made from (an issuer's name comes from them).
struct Cert {
    der: Vec<u8>,
    params: CertificateParams,
}

fn params(spec: &Spec<'_>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, spec.cn);
    p.serial_number = Some(u64::from(rand_serial()).into());
    p.not_before = time::OffsetDateTime::from_unix_timestamp(now() - DAY).unwrap();
    p.not_after = time::OffsetDateTime::from_unix_timestamp(spec.not_after).unwrap();
    if spec.ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    if let Some(dns) = spec.dns {
        p.subject_alt_names = vec![SanType::DnsName(dns.try_into().unwrap())];
    }
    p
}

/// A certificate for `key`, signed by `issuer` (itself when None).
fn make(spec: &Spec<'_>, key: &KeyPair, issuer: Option<(&Cert, &KeyPair)>) -> Cert {
    match issuer {
        Some(issuer) => make_for(spec, key, issuer),
        None => {
            let params = params(spec);
            Cert { der: params.self_signed(key).unwrap().der().to_vec(), params }
        }
    }
}

/// A certificate for the public key `subject`, signed by `issuer`.
fn make_for(spec: &Spec<'_>, subject: &impl PublicKeyData, (cert, key): (&Cert, &KeyPair)) -> Cert {
    let params = params(spec);
    let der = params.signed_by(subject, &Issuer::from_params(&cert.params, key)).unwrap().der().to_vec();
    Cert { der, params }
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u32::from_be_bytes(b) >> 1
}

fn info(c: &Cert) -> CertInfo {
    CertInfo::from_der(&c.der).unwrap()
}

/// A root, an intermediate under it, and the intermediate's key.
struct Pki {
    root: Cert,
    inter: Cert,
    inter_key: KeyPair,
}

fn pki() -> Pki {
    let root_key = ec_key();
    let root = make(&Spec::ca("Test Root"), &root_key, None);
    let inter_key = ec_key();
    let inter = make(&Spec::ca("Test Issuing CA"), &inter_key, Some((&root, &root_key)));
    Pki { root, inter, inter_key }
}

fn judge(chain: &[CertInfo], name: &str, trust: &TrustStore, version: &str) -> Vec<Finding> {
    evaluate(chain, version, &Context { now: now(), expiring_within: 30 * DAY, name, trust })
}

fn trusting(root: &CertInfo) -> TrustStore {
    let mut t = TrustStore::default();
    t.add_root(root);
    t
}

#[test]
fn a_complete_chain_to_a_trusted_root_has_no_findings() {
    let p = pki();
    let leaf = make(&Spec::leaf("www.example.test"), &ec_key(), Some((&p.inter, &p.inter_key)));
    let chain = [info(&leaf), info(&p.inter)];
    assert_eq!(judge(&chain, "www.example.test", &trusting(&info(&p.root)), "TLSv1.3"), []);
    // The root served as well changes nothing.
    let chain = [info(&leaf), info(&p.inter), info(&p.root)];
    assert_eq!(judge(&chain, "www.example.test", &trusting(&info(&p.root)), "TLSv1.2"), []);
    // The public roots do not know this root.
    let chain = [info(&leaf), info(&p.inter)];
    assert_eq!(judge(&chain, "www.example.test", &TrustStore::webpki(), "TLSv1.3"), [Finding::UnknownIssuer]);
}

#[test]
fn wrong_name_legacy_protocol_expiry() {
    let p = pki();
    let trust = trusting(&info(&p.root));
    let leaf = make(&Spec::leaf("www.example.test"), &ec_key(), Some((&p.inter, &p.inter_key)));
    let chain = [info(&leaf), info(&p.inter)];
    assert_eq!(judge(&chain, "other.example.test", &trust, "TLSv1.3"), [Finding::HostnameMismatch]);
    assert_eq!(judge(&chain, "www.example.test", &trust, "TLSv1.0"), [Finding::LegacyTls]);
    assert_eq!(judge(&chain, "www.example.test", &trust, "TLSv1.1"), [Finding::LegacyTls]);

    let expired = make(
        &Spec { not_after: now() - DAY, ..Spec::leaf("www.example.test") },
        &ec_key(),
        Some((&p.inter, &p.inter_key)),
    );
    assert_eq!(judge(&[info(&expired), info(&p.inter)], "www.example.test", &trust, "TLSv1.3"), [Finding::Expired]);
    let expiring = make(
        &Spec { not_after: now() + 10 * DAY, ..Spec::leaf("www.example.test") },
        &ec_key(),
        Some((&p.inter, &p.inter_key)),
    );
    assert_eq!(judge(&[info(&expiring), info(&p.inter)], "www.example.test", &trust, "TLSv1.3"), [Finding::Expiring]);
}

#[test]
fn a_missing_intermediate_is_an_incomplete_chain() {
    let p = pki();
    let leaf = make(&Spec::leaf("www.example.test"), &ec_key(), Some((&p.inter, &p.inter_key)));
    // privca knows the intermediate: only incomplete.
    let mut own = TrustStore::default();
    own.add_own([info(&p.root), info(&p.inter)]);
    assert_eq!(judge(&[info(&leaf)], "www.example.test", &own, "TLSv1.3"), [Finding::IncompleteChain]);
    // Nobody knows it: incomplete, and the issuer unknown.
    assert_eq!(
        judge(&[info(&leaf)], "www.example.test", &TrustStore::default(), "TLSv1.3"),
        [Finding::IncompleteChain, Finding::UnknownIssuer]
    );
    // A served intermediate under an unknown root: the root's absence is normal.
    assert_eq!(
        judge(&[info(&leaf), info(&p.inter)], "www.example.test", &TrustStore::default(), "TLSv1.3"),
        [Finding::UnknownIssuer]
    );
}

#[test]
fn self_signed_leaf() {
    let key = ec_key();
    let leaf = make(&Spec::leaf("self.example.test"), &key, None);
    assert_eq!(judge(&[info(&leaf)], "self.example.test", &TrustStore::webpki(), "TLSv1.3"), [Finding::SelfSigned]);
    // A forged "self-signed" name pair whose signature is another key's is not self-signed.
    let other = make(&Spec::leaf("self.example.test"), &ec_key(), None);
    let mut forged = info(&leaf);
    forged.signature = info(&other).signature;
    assert_ne!(judge(&[forged], "self.example.test", &TrustStore::default(), "TLSv1.3"), [Finding::SelfSigned]);
}

#[test]
fn weak_rsa_key_and_sha1_signature() {
    let p = pki();
    let trust = trusting(&info(&p.root));
    let weak = rcgen::SubjectPublicKeyInfo::from_der(RSA1024_SPKI).unwrap();
    let leaf = make_for(&Spec::leaf("old.example.test"), &weak, (&p.inter, &p.inter_key));
    let chain = [info(&leaf), info(&p.inter)];
    assert_eq!(chain[0].key_type, "rsa-1024");
    assert_eq!(judge(&chain, "old.example.test", &trust, "TLSv1.2"), [Finding::WeakKey]);

    let rsa_root = CertInfo::from_der(RSA_ROOT).unwrap();
    let chain = [CertInfo::from_der(SHA1_LEAF).unwrap()];
    assert_eq!(chain[0].signature_algorithm, "sha1WithRSAEncryption");
    assert_eq!(judge(&chain, "sha1.example.test", &trusting(&rsa_root), "TLSv1.2"), [Finding::Sha1Signature]);
}

#[test]
fn certificate_fields() {
    let p = pki();
    let leaf = info(&make(&Spec::leaf("www.example.test"), &ec_key(), Some((&p.inter, &p.inter_key))));
    assert_eq!(leaf.subject, "CN=www.example.test");
    assert_eq!(leaf.issuer, "CN=Test Issuing CA");
    assert_eq!(leaf.sans, ["dns:www.example.test"]);
    assert_eq!(leaf.key_type, "ec-p256");
    assert_eq!(leaf.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(leaf.fingerprint_sha256.len(), 64);
    assert!(!leaf.is_ca && info(&p.inter).is_ca);
}

#[test]
fn targets_and_ranges() {
    let t = parse_targets(&["a.example.test:8443, 127.0.0.1:443".into(), "[::1]:993,b.example.test".into()]).unwrap();
    assert_eq!(
        t,
        [
            ("a.example.test".into(), 8443),
            ("127.0.0.1".into(), 443),
            ("::1".into(), 993),
            ("b.example.test".into(), 443)
        ]
    );
    assert!(matches!(parse_targets(&["host:0".into()]), Err(DiscoverError::Target(_))));
    assert!(matches!(parse_targets(&["host:http".into()]), Err(DiscoverError::Target(_))));

    let r = expand_cidr("127.0.0.0/28", &[443, 8443], 4096).unwrap();
    assert_eq!(r.len(), 14 * 2);
    assert_eq!(r[0], ("127.0.0.1".into(), 443));
    assert_eq!(expand_cidr("10.0.0.0/20", &[443], 4096).unwrap().len(), 4094);
    let e = expand_cidr("10.0.0.0/16", &[443], 4096).unwrap_err();
    assert_eq!(
        e.to_string(),
        "CIDR 10.0.0.0/16 has 65536 addresses, more than the maximum of 4096 (raise it with --max-addresses)"
    );
    assert!(expand_cidr("2001:db8::/64", &[443], 4096).is_err());
    assert!(matches!(expand_cidr("10.0.0.300/24", &[443], 4096), Err(DiscoverError::Target(_))));

    let targets = with_sni(vec![("127.0.0.1".into(), 443)], &["a.test".into(), "b.test".into()]);
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[1].name(), "b.test");
    assert_eq!(targets[1].label(), "127.0.0.1:443 (sni b.test)");
    let plain = with_sni(vec![("127.0.0.1".into(), 443), ("www.example.test".into(), 443)], &[]);
    assert_eq!(plain[0].server_name(), None);
    assert_eq!(plain[1].server_name().as_deref(), Some("www.example.test"));
}
