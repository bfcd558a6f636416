//! The SCEP RA keys in the token: by default one key signs CertReps and another decrypts request
//! envelopes, each with a certificate whose keyUsage says which, the encryption certificate
//! first in GetCACert; `scep.ra_keys = "shared"` keeps one key and one certificate for both.

use der::{Decode, Encode};
use privca::{
    adapters::scep::ScepAdapter,
    ca::bootstrap::{SCEP_RA_ENCRYPTION_KEY, SCEP_RA_KEY},
    signer::{JobClass, SigningAlgorithm},
};
use privca_scep::{envelope, rejection::ImplicitRejection, ScepBackend};
use x509_cert::{
    ext::pkix::{KeyUsage, KeyUsages},
    Certificate,
};

use crate::harness::{both_databases, Db, TestCa};

both_databases!(separate_keys_sign_and_decrypt_apart, a_shared_key_does_both);

const SCEP: &str = "[scep]\nenabled = true\n[scep.names.default]\nprofile = \"device\"\n";

fn key_usage(der: &[u8]) -> KeyUsage {
    let cert = Certificate::from_der(der).unwrap();
    let (_, usage) = cert.tbs_certificate.get::<KeyUsage>().unwrap().unwrap();
    usage
}

fn spki(der: &[u8]) -> Vec<u8> {
    Certificate::from_der(der).unwrap().tbs_certificate.subject_public_key_info.to_der().unwrap()
}

/// A content key sealed to `recipient` the way a SCEP client does, opened through the port.
async fn round_trip(scep: &ScepAdapter, recipient: &[u8]) -> Result<Vec<u8>, privca_scep::ScepError> {
    let cert = Certificate::from_der(recipient).unwrap();
    let sealed = envelope::seal(b"a PKCS#10 request", &cert, envelope::ContentCipher::Aes128).unwrap();
    let sealed = envelope::decode(&sealed, &cert, false).unwrap();
    let recovered = scep.ra_decrypt(&sealed.encrypted_key).await?;
    sealed.open(Some(&recovered), &ImplicitRejection::new().unwrap())
}

async fn separate_keys_sign_and_decrypt_apart(db: Db) {
    let Some(t) = TestCa::with_config(db, SCEP).await else { return };
    let scep = ScepAdapter::start(t.ca.clone()).await.unwrap();
    let certs = scep.ca_certs("default").await.unwrap();
    let encryption = certs.ra_encryption.clone().expect("an encryption certificate of its own");
    assert_eq!(key_usage(&encryption), KeyUsage(KeyUsages::KeyEncipherment.into()));
    assert_eq!(key_usage(&certs.ra), KeyUsage(KeyUsages::DigitalSignature.into()));
    assert_ne!(spki(&encryption), spki(&certs.ra), "two keys");
    assert_eq!(spki(&encryption), t.ca.signing().key_info(SCEP_RA_ENCRYPTION_KEY).unwrap().spki_der);
    let order = certs.clone().in_order();
    assert_eq!(order[..2], [encryption.clone(), certs.ra.clone()], "encryption certificate first");

    assert_eq!(round_trip(&scep, &encryption).await.unwrap(), b"a PKCS#10 request");
    assert!(round_trip(&scep, &certs.ra).await.is_err(), "the signing key does not decrypt");
    let signing = t.ca.signing();
    assert!(signing
        .sign(JobClass::Protocol, SCEP_RA_KEY, SigningAlgorithm::RsaPkcs1Sha256, b"x".to_vec())
        .await
        .is_ok());
    assert!(
        signing
            .sign(JobClass::Protocol, SCEP_RA_ENCRYPTION_KEY, SigningAlgorithm::RsaPkcs1Sha256, b"x".to_vec())
            .await
            .is_err(),
        "the decryption key does not sign"
    );
    assert!(!scep.refresh_ra_certificate().await.unwrap(), "both certificates are kept while fresh");
}

async fn a_shared_key_does_both(db: Db) {
    let extra = SCEP.replace("enabled = true\n", "enabled = true\nra_keys = \"shared\"\n");
    let Some(t) = TestCa::with_config(db, &extra).await else { return };
    let scep = ScepAdapter::start(t.ca.clone()).await.unwrap();
    let certs = scep.ca_certs("default").await.unwrap();
    assert!(certs.ra_encryption.is_none());
    assert_eq!(key_usage(&certs.ra), KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment));
    assert_eq!(spki(&certs.ra), t.ca.signing().key_info(SCEP_RA_KEY).unwrap().spki_der);
    assert_eq!(round_trip(&scep, &certs.ra).await.unwrap(), b"a PKCS#10 request");
    assert!(t.ca.signing().key_info(SCEP_RA_ENCRYPTION_KEY).is_err(), "no second key is made");
}
