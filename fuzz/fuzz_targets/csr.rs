//! PKCS#10 requests (RFC 2986) on the path every protocol shares: `IssuanceRequest::from_csr`
//! (decoding, proof of possession, subject and SAN extraction) then `ca::prepare` (key policy,
//! SAN rules, subject template, TBSCertificate encoding) under every profile of
//! `conf/privca.dev.toml`; and each protocol's own look at the CSR: ACME's finalize identifiers
//! and account-key check, EST's serverkeygen recipient and re-enrollment names, SCEP's
//! challengePassword, the public-key policy.
//!
//! A mutated CSR almost never keeps a valid signature, yet anyone can sign whatever request
//! they like with their own key. So every input that decodes is also re-signed with a key of
//! this harness (its SubjectPublicKeyInfo put in place of the request's) and sent down the
//! same path, which lets the fuzzer reach the policy and encoding code with any subject,
//! attributes and extensions. No HSM, no database: `prepare` signs nothing.
#![no_main]

use std::{path::Path, sync::OnceLock};

use der::{asn1::BitString, Decode, Encode};
use libfuzzer_sys::fuzz_target;
use privca::{
    ca::{
        prepare::prepare,
        request::{IssuanceRequest, Requester},
        Issuer,
    },
    config::Config,
    policy::keys,
    signer::{KeyAlgorithm, SigningAlgorithm},
};
use ring::{
    rand::SystemRandom,
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING},
};
use x509_cert::{request::CertReq, spki::SubjectPublicKeyInfoOwned, Certificate};

/// A CA certificate (P-256, valid until 2126) standing in for the issuer, and a client
/// certificate for EST's checks against the TLS client.
const ISSUER: &[u8] = include_bytes!("../../protocols/scep/tests/vectors/test-p256.crt.der");
const CLIENT: &[u8] = include_bytes!("../../protocols/est/tests/vectors/rsa2048.crt.der");

const ALL_KEYS: [KeyAlgorithm; 6] = [
    KeyAlgorithm::EcdsaP256,
    KeyAlgorithm::EcdsaP384,
    KeyAlgorithm::Ed25519,
    KeyAlgorithm::Rsa2048,
    KeyAlgorithm::Rsa3072,
    KeyAlgorithm::Rsa4096,
];

struct Fixture {
    config: Config,
    issuer: Issuer,
    client: Certificate,
    key: EcdsaKeyPair,
    spki: SubjectPublicKeyInfoOwned,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/privca.dev.toml");
        let config = Config::load(&conf, Some(std::env::temp_dir())).expect("conf/privca.dev.toml loads");
        let issuer = Issuer::from_der("ec", ISSUER, "", SigningAlgorithm::EcdsaSha256).expect("issuer fixture");
        let client = Certificate::from_der(CLIENT).expect("client fixture");
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).expect("P-256 key");
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                parameters: Some(der::Any::encode_from(&const_oid::db::rfc5912::SECP_256_R_1).expect("curve")),
            },
            subject_public_key: BitString::from_bytes(key.public_key().as_ref()).expect("point"),
        };
        Fixture { config, issuer, client, key, spki }
    })
}

/// The core's path: what `AcmeBackend::finalize`, `EstBackend::enroll` and
/// `ScepBackend::enroll` do with a CSR before anything is reserved or signed.
fn issue(f: &Fixture, der: &[u8]) {
    for (name, profile) in &f.config.profiles {
        let Ok(request) = IssuanceRequest::from_csr(der, name, Requester::system()) else { return };
        if let Ok(prepared) = prepare(&request, profile, &f.issuer, &f.config.urls) {
            assert_eq!(prepared.tbs.to_der().ok().as_deref(), Some(prepared.tbs_der.as_slice()));
        }
    }
}

/// Each protocol's own reading of a request.
fn protocols(f: &Fixture, csr: &CertReq) {
    if let Ok((_, spki)) = privca_acme::resource::order::csr_identifiers(csr) {
        if let Some(jwk) = privca_acme::jws::jwk_from_spki(&spki) {
            let _ = privca_acme::jws::thumbprint(&jwk);
        }
        let _ = keys::check(&spki, &ALL_KEYS, "fuzz");
    }
    let _ = privca_est::names::csr_has_sans(csr);
    let _ = privca_est::names::same_names(&f.client, csr);
    let _ = privca_est::serverkey::requested_recipient(csr, Some(CLIENT));
    let _ = privca::adapters::scep::challenge_password(csr);
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    issue(f, data);
    let Ok(mut csr) = CertReq::from_der(data) else { return };
    protocols(f, &csr);
    // The same request signed by its key's holder.
    csr.info.public_key = f.spki.clone();
    let Ok(info) = csr.info.to_der() else { return };
    let Ok(signature) = f.key.sign(&SystemRandom::new(), &info) else { return };
    csr.algorithm =
        x509_cert::spki::AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256, parameters: None };
    let Ok(signature) = BitString::from_bytes(signature.as_ref()) else { return };
    csr.signature = signature;
    if let Ok(der) = csr.to_der() {
        issue(f, &der);
    }
});
