//! The directory (§7.1.1) with `meta`, `renewalInfo` (RFC 9773) and `meta.profiles`.

use serde_json::{json, Map, Value};

use crate::links::Links;
use crate::settings::AcmeSettings;

/// The directory object.
pub fn directory(links: &Links, settings: &AcmeSettings) -> Value {
    let mut meta = Map::new();
    if let Some(tos) = &settings.terms_of_service {
        meta.insert("termsOfService".into(), json!(tos));
    }
    if let Some(w) = &settings.website {
        meta.insert("website".into(), json!(w));
    }
    if !settings.caa_identities.is_empty() {
        meta.insert("caaIdentities".into(), json!(settings.caa_identities));
    }
    meta.insert("externalAccountRequired".into(), json!(settings.eab_required));
    if !settings.profiles.is_empty() {
        let profiles: Map<String, Value> = settings.profiles.iter().map(|(n, d)| (n.clone(), json!(d))).collect();
        meta.insert("profiles".into(), Value::Object(profiles));
    }
    json!({
        "newNonce": links.url("new-nonce"),
        "newAccount": links.url("new-account"),
        "newOrder": links.url("new-order"),
        "revokeCert": links.url("revoke-cert"),
        "keyChange": links.url("key-change"),
        "renewalInfo": links.url("renewal-info"),
        "meta": meta,
    })
}
