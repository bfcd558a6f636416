//! Findings over real certificates (made with OpenSSL, a dev-dependency), target parsing.

use openssl::{
    asn1::Asn1Time,
    bn::BigNum,
    ec::{EcGroup, EcKey},
    hash::MessageDigest,
    nid::Nid,
    pkey::{PKey, Private},
    rsa::Rsa,
    x509::{
        extension::{BasicConstraints, SubjectAlternativeName},
        X509Builder, X509NameBuilder, X509,
    },
};

use super::{
    certinfo::CertInfo,
    chain::TrustStore,
    expand_cidr,
    findings::{evaluate, Context, Finding},
    parse_targets, with_sni, DiscoverError,
};

const DAY: i64 = 86_400;

fn now() -> i64 {
    crate::ledger::now()
}

fn ec_key() -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap()
}

struct Spec<'a> {
    cn: &'a str,
    dns: Option<&'a str>,
    ca: bool,
    not_after: i64,
    digest: MessageDigest,
}

impl<'a> Spec<'a> {
    fn leaf(cn: &'a str) -> Self {
        Spec { cn, dns: Some(cn), ca: false, not_after: now() + 90 * DAY, digest: MessageDigest::sha256() }
    }
    fn ca(cn: &'a str) -> Self {
        Spec { cn, dns: None, ca: true, not_after: now() + 900 * DAY, digest: MessageDigest::sha256() }
    }
}

/// A certificate for `key`, signed by `issuer` (itself when None).
fn make(spec: &Spec<'_>, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", spec.cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(rand_serial()).unwrap().to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(name.as_ref(), |(c, _)| c.subject_name())).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(now() - DAY).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(spec.not_after).unwrap()).unwrap();
    if spec.ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    }
    if let Some(dns) = spec.dns {
        b.append_extension(SubjectAlternativeName::new().dns(dns).build(&b.x509v3_context(None, None)).unwrap())
            .unwrap();
    }
    b.sign(issuer.map_or(key, |(_, k)| k), spec.digest).unwrap();
    b.build()
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u32::from_be_bytes(b) >> 1
}

fn info(c: &X509) -> CertInfo {
    CertInfo::from_der(&c.to_der().unwrap()).unwrap()
}

/// A root, an intermediate under it, and the intermediate's key.
struct Pki {
    root: X509,
    inter: X509,
    inter_key: PKey<Private>,
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

fn trusting(root: &X509) -> TrustStore {
    let mut t = TrustStore::default();
    t.add_root(&info(root));
    t
}

#[test]
fn a_complete_chain_to_a_trusted_root_has_no_findings() {
    let p = pki();
    let leaf = make(&Spec::leaf("www.example.test"), &ec_key(), Some((&p.inter, &p.inter_key)));
    let chain = [info(&leaf), info(&p.inter)];
    assert_eq!(judge(&chain, "www.example.test", &trusting(&p.root), "TLSv1.3"), []);
    // The root served as well changes nothing.
    let chain = [info(&leaf), info(&p.inter), info(&p.root)];
    assert_eq!(judge(&chain, "www.example.test", &trusting(&p.root), "TLSv1.2"), []);
    // The public roots do not know this root.
    let chain = [info(&leaf), info(&p.inter)];
    assert_eq!(judge(&chain, "www.example.test", &TrustStore::webpki(), "TLSv1.3"), [Finding::UnknownIssuer]);
}

#[test]
fn wrong_name_legacy_protocol_expiry() {
    let p = pki();
    let trust = trusting(&p.root);
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
    let trust = trusting(&p.root);
    let weak = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let leaf = make(&Spec::leaf("old.example.test"), &weak, Some((&p.inter, &p.inter_key)));
    let chain = [info(&leaf), info(&p.inter)];
    assert_eq!(chain[0].key_type, "rsa-1024");
    assert_eq!(judge(&chain, "old.example.test", &trust, "TLSv1.2"), [Finding::WeakKey]);

    let rsa_root_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let rsa_root = make(&Spec::ca("RSA Root"), &rsa_root_key, None);
    let sha1 = make(
        &Spec { digest: MessageDigest::sha1(), ..Spec::leaf("sha1.example.test") },
        &PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        Some((&rsa_root, &rsa_root_key)),
    );
    let chain = [info(&sha1)];
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
