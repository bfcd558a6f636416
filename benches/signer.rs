//! Signer benchmark, all figures for the same key and thread count in the same run:
//!
//! * `raw/s`: `cryptoki` directly, one logged-in session per thread, `C_Sign` on a digest in a
//!   loop: the best the token can do.
//! * `signer/s`: privca's signer layer (`Pkcs11Signer::sign` from 1 or 2 threads: session pool,
//!   cached key handles, software hashing of a 400-byte TBS, r‖s → DER). The goal is ≥ 80 % of
//!   raw; the run fails below it.
//! * `service/s`: the async front the issuance cycle calls (`SigningService`: queue, signing
//!   threads, oneshot wake-up) with 16 callers in flight. On SoftHSM2 the token shares the two
//!   cores with the async runtime, so this ratio falls at 2 threads; a network HSM does not.
//! * `1-caller/s`: one call at a time through the service (latency bound: two thread
//!   hand-offs per call).
//!
//! Full run:  `cargo bench --bench signer`            (5 s per measurement)
//! Smoke run: `PRIVCA_BENCH_SECONDS=1 cargo test --bench signer`  (debug build, seconds)
//! Exits non-zero if the signer layer reaches less than `PRIVCA_BENCH_MIN_RATIO` (default 0.8)
//! of the raw rate in a full run.
//! Raw rates only: `PRIVCA_BENCH_RAW_ONLY=ecdsa-p256,rsa-2048,rsa-2048-decrypt` prints
//! `raw KEY THREADS RATE` lines (the protocol benchmarks compare against them in the same run),
//! for 1 and 2 threads or the counts in `PRIVCA_BENCH_RAW_THREADS` (e.g. `2`). `est-floor` is
//! the cryptography one EST enrollment requires, done raw on one thread: the CSR's
//! proof-of-possession check (a P-256 verification), the certificate's HSM signature, its check
//! before commit, and the first OCSP response's HSM signature (`raw est-floor 1 ENROLLMENTS/S`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    mechanism::Mechanism,
    object::{Attribute, ObjectClass},
    session::UserType,
    types::AuthPin,
};
use privca::{
    config::{HsmConfig, SecretRef},
    signer::{
        pkcs11::{KeyPurpose, Pkcs11Signer},
        JobClass, KeyAlgorithm, QueueCapacity, Signer, SigningAlgorithm, SigningService,
    },
};

#[path = "common/result.rs"]
mod results;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const LABEL: &str = "privca-bench";
/// Concurrent callers of the signing service (requests in flight on a busy server).
const CALLERS: usize = 16;

fn main() {
    let seconds: f64 = std::env::var("PRIVCA_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let min_ratio: f64 = std::env::var("PRIVCA_BENCH_MIN_RATIO").ok().and_then(|s| s.parse().ok()).unwrap_or(0.8);
    let smoke = seconds < 2.0;
    let window = Duration::from_secs_f64(seconds);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tokens")).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}/tokens\nobjectstore.backend = file\n", dir.path().display()),
    )
    .unwrap();
    std::env::set_var("SOFTHSM2_CONF", &conf);
    for (pin, value) in [("user.pin", "1234"), ("so.pin", "12345678")] {
        let path = dir.path().join(pin);
        std::fs::write(&path, value).unwrap();
        // Secret files open to group or others are refused.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let hsm = HsmConfig {
        module: MODULE.into(),
        token_label: LABEL.into(),
        user_pin: SecretRef::File { key: "hsm.user_pin".into(), path: dir.path().join("user.pin") },
        so_pin: Some(SecretRef::File { key: "hsm.so_pin".into(), path: dir.path().join("so.pin") }),
        auto_init: true,
        sessions: 2,
        queue_capacity: QueueCapacity::derived(2),
    };
    let token = Arc::new(Pkcs11Signer::open(&hsm).unwrap());
    if let Ok(keys) = std::env::var("PRIVCA_BENCH_RAW_ONLY") {
        let thread_counts: Vec<usize> = std::env::var("PRIVCA_BENCH_RAW_THREADS")
            .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
            .unwrap_or_else(|_| vec![1, 2]);
        for name in keys.split(',') {
            if name == "est-floor" {
                let label = "bench-est-floor";
                token.generate_key(label, KeyAlgorithm::EcdsaP256, KeyPurpose::Sign).unwrap();
                let spki_der = token.key_info(label).unwrap().spki_der;
                println!("raw {name} 1 {:.0}", est_floor_rate(label, &spki_der, window));
                continue;
            }
            if name == "rsa-2048-decrypt" {
                let label = "bench-rsa-decrypt";
                token.generate_key(label, KeyAlgorithm::Rsa2048, KeyPurpose::SignAndDecrypt).unwrap();
                for &threads in &thread_counts {
                    println!("raw {name} {threads} {:.0}", raw_decrypt_rate(label, threads, window));
                }
                continue;
            }
            let (key, alg) = match name {
                "rsa-2048" => (KeyAlgorithm::Rsa2048, SigningAlgorithm::RsaPkcs1Sha256),
                _ => (KeyAlgorithm::EcdsaP256, SigningAlgorithm::EcdsaSha256),
            };
            let label = format!("bench-{name}");
            token.generate_key(&label, key, KeyPurpose::Sign).unwrap();
            for &threads in &thread_counts {
                println!("raw {name} {threads} {:.0}", raw_rate(&label, alg, threads, window));
            }
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("signer benchmark, SoftHSM2, {seconds} s per measurement{}", if smoke { " (smoke)" } else { "" });
    println!(
        "{:<12} {:>7} {:>10} {:>10} {:>6} {:>10} {:>6} {:>10}",
        "key", "threads", "raw/s", "signer/s", "ratio", "service/s", "ratio", "1-caller/s"
    );
    let mut worst: f64 = f64::MAX;
    for (name, key, alg) in [
        ("ecdsa-p256", KeyAlgorithm::EcdsaP256, SigningAlgorithm::EcdsaSha256),
        ("rsa-2048", KeyAlgorithm::Rsa2048, SigningAlgorithm::RsaPkcs1Sha256),
    ] {
        let label = format!("bench-{name}");
        token.generate_key(&label, key, KeyPurpose::Sign).unwrap();
        for threads in [1usize, 2] {
            let service = SigningService::new(token.clone() as Arc<dyn Signer>, threads);
            let raw = raw_rate(&label, alg, threads, window);
            let signer = signer_rate(&token, &label, alg, threads, window);
            let service_rate = runtime.block_on(service_rate(&service, &label, alg, CALLERS, window));
            let one = runtime.block_on(self::service_rate(&service, &label, alg, 1, window));
            let ratio = signer / raw;
            worst = worst.min(ratio);
            println!(
                "{name:<12} {threads:>7} {raw:>10.0} {signer:>10.0} {ratio:>6.2} {service_rate:>10.0} {:>6.2} {one:>10.0}",
                service_rate / raw
            );
            for (series, rate) in [
                ("raw-hsm", raw),
                ("privca-signer", signer),
                ("privca-service", service_rate),
                ("privca-1-caller", one),
            ] {
                results::result("signer", &format!("{series}/{name}/t{threads}"), "per_s", rate, "sig/s");
            }
        }
    }
    println!("worst signer/raw ratio: {worst:.2} (goal >= {min_ratio})");
    if !smoke && worst < min_ratio {
        eprintln!("signer layer below {min_ratio} of the raw HSM rate");
        std::process::exit(1);
    }
}

/// A fresh `cryptoki` context and the slot of the benchmark token.
fn bench_token() -> (Pkcs11, cryptoki::slot::Slot) {
    let ctx = Pkcs11::new(MODULE).unwrap();
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).map(|i| i.label().trim_end() == LABEL).unwrap_or(false))
        .unwrap();
    (ctx, slot)
}

/// `C_Sign` in a loop on one pre-opened, logged-in session per thread, with the key handle
/// found once: the best the token can do.
fn raw_rate(label: &str, alg: SigningAlgorithm, threads: usize, window: Duration) -> f64 {
    let (ctx, slot) = bench_token();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (ctx, count, stop) = (ctx.clone(), count.clone(), stop.clone());
            scope.spawn(move || {
                let session = ctx.open_ro_session(slot).unwrap();
                let _ = session.login(UserType::User, Some(&AuthPin::from("1234".to_owned())));
                let key = session
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Label(label.as_bytes().to_vec()),
                    ])
                    .unwrap()[0];
                let (mechanism, data) = match alg {
                    SigningAlgorithm::EcdsaSha256 => (Mechanism::Ecdsa, vec![7u8; 32]),
                    _ => (Mechanism::Sha256RsaPkcs, vec![7u8; 400]),
                };
                while !stop.load(Ordering::Relaxed) {
                    session.sign(&mechanism, key, &data).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
    });
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// One EST enrollment's required cryptography in a loop on one thread: verify the CSR's
/// signature (ring, P-256), sign the certificate in the token (SHA-256 in software, `C_Sign`),
/// verify that signature with the token key's public key, sign an OCSP response in the token.
fn est_floor_rate(label: &str, spki_der: &[u8], window: Duration) -> f64 {
    use der::Decode;
    use ring::{
        rand::SystemRandom,
        signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey},
    };
    let rng = SystemRandom::new();
    let client = EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap().as_ref(),
        &rng,
    )
    .unwrap();
    let csr_info = vec![3u8; 250];
    let csr_signature = client.sign(&rng, &csr_info).unwrap();
    let client_key = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, client.public_key().as_ref().to_vec());
    let ca_point = spki::SubjectPublicKeyInfoRef::from_der(spki_der).unwrap().subject_public_key.raw_bytes().to_vec();
    let ca_key = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, ca_point);
    let (tbs_certificate, tbs_response) = (vec![5u8; 450], vec![9u8; 200]);
    let (ctx, slot) = bench_token();
    let session = ctx.open_ro_session(slot).unwrap();
    let _ = session.login(UserType::User, Some(&AuthPin::from("1234".to_owned())));
    let key = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(label.as_bytes().to_vec())])
        .unwrap()[0];
    let digest = |data: &[u8]| ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec();
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < window {
        client_key.verify(&csr_info, csr_signature.as_ref()).unwrap();
        let certificate_signature = session.sign(&Mechanism::Ecdsa, key, &digest(&tbs_certificate)).unwrap();
        ca_key.verify(&tbs_certificate, &certificate_signature).unwrap();
        session.sign(&Mechanism::Ecdsa, key, &digest(&tbs_response)).unwrap();
        count += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// `C_Decrypt` (RSA PKCS#1 v1.5, a 32-byte key as SCEP envelopes carry) in a loop on one
/// logged-in session per thread: the SCEP RA's share of the token's work.
fn raw_decrypt_rate(label: &str, threads: usize, window: Duration) -> f64 {
    let (ctx, slot) = bench_token();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (ctx, count, stop) = (ctx.clone(), count.clone(), stop.clone());
            scope.spawn(move || {
                let session = ctx.open_ro_session(slot).unwrap();
                let _ = session.login(UserType::User, Some(&AuthPin::from("1234".to_owned())));
                let find = |class| {
                    session
                        .find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())])
                        .unwrap()[0]
                };
                let (public, private) = (find(ObjectClass::PUBLIC_KEY), find(ObjectClass::PRIVATE_KEY));
                let ciphertext = session.encrypt(&Mechanism::RsaPkcs, public, &[7u8; 32]).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    session.decrypt(&Mechanism::RsaPkcs, private, &ciphertext).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
    });
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The same signatures through `SigningService::sign` (what the issuance cycle calls), from
/// `threads` concurrent tasks, over a 400-byte TBS-sized message.
async fn service_rate(
    service: &SigningService,
    label: &str,
    alg: SigningAlgorithm,
    threads: usize,
    window: Duration,
) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..threads {
        let (service, count, label) = (service.clone(), count.clone(), label.to_owned());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                service.sign(JobClass::Issuance, &label, alg, vec![7u8; 400]).await.unwrap();
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn signer_rate(token: &Pkcs11Signer, label: &str, alg: SigningAlgorithm, threads: usize, window: Duration) -> f64 {
    let count = AtomicU64::new(0);
    let deadline = Instant::now() + window;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while Instant::now() < deadline {
                    token.sign(label, alg, &[7u8; 400]).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
