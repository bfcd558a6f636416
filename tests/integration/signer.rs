//! The PKCS#11 signer against a real SoftHSM2 token: every key type is generated in the token,
//! signs, and verifies with an independent implementation (ring, and openssl for RSA
//! decryption); the private keys are always-sensitive and never-extractable.

use std::{process::Command, sync::Arc};

use privca::signer::{
    pkcs11::{KeyPurpose, Pkcs11Signer},
    verify_spki, JobClass, KeyAlgorithm, Signer, SigningAlgorithm, SigningService,
};

use crate::harness::{Db, TestCa};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_signs_in_the_token_and_verifies_in_software() {
    let t = TestCa::new(Db::Sqlite).await.unwrap();
    let token: &Arc<Pkcs11Signer> = &t.app.token;
    let cases = [
        (KeyAlgorithm::EcdsaP256, SigningAlgorithm::EcdsaSha256),
        (KeyAlgorithm::EcdsaP384, SigningAlgorithm::EcdsaSha384),
        (KeyAlgorithm::Ed25519, SigningAlgorithm::Ed25519),
        (KeyAlgorithm::Rsa2048, SigningAlgorithm::RsaPkcs1Sha256),
        (KeyAlgorithm::Rsa2048, SigningAlgorithm::RsaPssSha256),
        (KeyAlgorithm::Rsa3072, SigningAlgorithm::RsaPkcs1Sha256),
        (KeyAlgorithm::Rsa4096, SigningAlgorithm::RsaPssSha256),
    ];
    let service = SigningService::new(token.clone() as Arc<dyn Signer>, 2);
    for (i, (key, alg)) in cases.into_iter().enumerate() {
        let label = format!("test-{i}-{}", key.name());
        let info = token.generate_key(&label, key, KeyPurpose::Sign).unwrap();
        assert_eq!(info.algorithm, key);
        assert_eq!(token.key_protection(&label).unwrap(), (true, true), "{label}");
        for message in [&b""[..], b"short", &[0xa5u8; 5000][..]] {
            let sig = service.sign(JobClass::Issuance, &label, alg, message.to_vec()).await.unwrap();
            verify_spki(&info.spki_der, alg, message, &sig).unwrap_or_else(|e| panic!("{label} {alg:?}: {e}"));
            assert!(verify_spki(&info.spki_der, alg, b"tampered", &sig).is_err());
        }
        // A second lookup of the same label finds the same public key.
        assert_eq!(token.load_key(&label).unwrap().unwrap().spki_der, info.spki_der);
    }
    let mismatch = token.sign("test-0-ecdsa-p256", SigningAlgorithm::RsaPkcs1Sha256, b"x");
    assert!(mismatch.is_err(), "an RSA algorithm on an EC key is refused");
    assert!(token.sign("no-such-key", SigningAlgorithm::EcdsaSha256, b"x").is_err());
}

/// More callers at once than `hsm.sessions`: each extra caller gets a session of its own, and
/// the pool keeps no more than `hsm.sessions` afterwards (the token stays logged in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_pool_keeps_at_most_its_size() {
    let t = TestCa::new(Db::Sqlite).await.unwrap();
    let token: &Arc<Pkcs11Signer> = &t.app.token;
    let size = t.ca.config().hsm.sessions;
    let info = token.generate_key("test-pool", KeyAlgorithm::EcdsaP256, KeyPurpose::Sign).unwrap();
    let spki = &info.spki_der;
    std::thread::scope(|s| {
        for i in 0..4 * size + 2 {
            s.spawn(move || {
                for j in 0..20 {
                    let message = format!("{i}/{j}");
                    let sig = token.sign("test-pool", SigningAlgorithm::EcdsaSha256, message.as_bytes()).unwrap();
                    verify_spki(spki, SigningAlgorithm::EcdsaSha256, message.as_bytes(), &sig).unwrap();
                }
            });
        }
    });
    assert!((1..=size).contains(&token.idle_sessions()), "{} idle, pool size {size}", token.idle_sessions());
    let sig = token.sign("test-pool", SigningAlgorithm::EcdsaSha256, b"after").unwrap();
    verify_spki(&info.spki_der, SigningAlgorithm::EcdsaSha256, b"after", &sig).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_decryption_happens_in_the_token() {
    let t = TestCa::new(Db::Sqlite).await.unwrap();
    let info = t.app.token.generate_key("test-ra", KeyAlgorithm::Rsa2048, KeyPurpose::SignAndDecrypt).unwrap();
    let dir = t.dir.path();
    let pem = der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &info.spki_der).unwrap();
    std::fs::write(dir.join("ra.pub"), pem).unwrap();
    std::fs::write(dir.join("cek"), [0x42u8; 32]).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-inkey"])
        .arg(dir.join("ra.pub"))
        .arg("-in")
        .arg(dir.join("cek"))
        .arg("-out")
        .arg(dir.join("cek.enc"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ciphertext = std::fs::read(dir.join("cek.enc")).unwrap();
    let plain = t.app.signing.decrypt(JobClass::Protocol, "test-ra", ciphertext.clone()).await.unwrap();
    assert_eq!(plain, vec![0x42u8; 32]);
    let mut tampered = ciphertext;
    tampered[10] ^= 0xff;
    assert!(t.app.signing.decrypt(JobClass::Protocol, "test-ra", tampered).await.is_err());
    assert!(
        t.app.signing.decrypt(JobClass::Protocol, "privca-issuer-ec", vec![0; 256]).await.is_err(),
        "EC keys cannot decrypt"
    );
}
