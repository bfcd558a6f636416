//! privca's own certificates (OCSP responders, SCEP RA) are issued once per successor however
//! many callers (instances sharing the ledger) find the same one due at the same moment.

use std::collections::BTreeSet;

use privca::{
    ca::{bootstrap::ocsp_key_label, own_cert},
    policy::Profile,
};

use crate::harness::{both_databases, Db, TestCa};

both_databases!(concurrent_callers_get_one_certificate_per_successor);

async fn concurrent_callers_get_one_certificate_per_successor(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let mut profile = Profile::ocsp_responder("ec", std::time::Duration::from_secs(86_400));
    profile.name = "test-own-certificate".into();
    let key = |label: &str| t.ca.signing().key_info(label).unwrap().spki_der;
    let (first_key, second_key) = (key(&ocsp_key_label("ec")), key(&ocsp_key_label("rsa")));

    // Four callers, no certificate yet: one is issued, all four serve it.
    let round = |spki: Vec<u8>| {
        let (ca, profile) = (t.ca.clone(), profile.clone());
        async move {
            let calls = (0..4).map(|_| {
                let (ca, profile, spki) = (ca.clone(), profile.clone(), spki.clone());
                tokio::spawn(async move { own_cert::current_or_issue(&ca, &profile, &spki).await.unwrap().serial })
            });
            let mut serials = BTreeSet::new();
            for call in calls.collect::<Vec<_>>() {
                serials.insert(call.await.unwrap());
            }
            serials
        }
    };
    let before = t.ca.ledger().count_certificates().await.unwrap();
    let first = round(first_key.clone()).await;
    assert_eq!(first.len(), 1, "one certificate served: {first:?}");
    assert_eq!(
        t.ca.ledger().latest_certificate("ec", &profile.name).await.unwrap().unwrap().serial,
        *first.first().unwrap()
    );

    // The key changed (the current certificate is no longer usable): one successor, a second
    // later (a successor is the newest by notAfter, then creation, in seconds).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = round(second_key).await;
    assert_eq!(second.len(), 1, "one successor served: {second:?}");
    assert_ne!(first, second);
    // Fresh: served as it is, nothing issued.
    assert_eq!(round(t.ca.signing().key_info(&ocsp_key_label("rsa")).unwrap().spki_der).await, second);
    let issued = t.ca.ledger().newest_serial("ec", &profile.name).await.unwrap();
    assert_eq!(issued.as_ref(), second.first());
    let issued_here = t.ca.ledger().count_certificates().await.unwrap() - before;
    assert_eq!(issued_here, 2, "one certificate per successor");
}
