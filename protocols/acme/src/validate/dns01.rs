//! dns-01 (§8.4): a TXT record at `_acme-challenge.<domain>` equal to
//! base64url(SHA-256(key authorization)); any one of several records may match.

use super::{dns01_digest, Validator};
use crate::error::{AcmeError, ErrorType};

pub(super) async fn validate(v: &Validator, domain: &str, key_authorization: &str) -> Result<(), AcmeError> {
    let name = format!("_acme-challenge.{domain}.");
    let lookup = v
        .resolver()
        .txt_lookup(name.as_str())
        .await
        .map_err(|e| AcmeError::new(ErrorType::Dns, format!("no TXT record at {name}: {e}")))?;
    let expected = dns01_digest(key_authorization);
    let mut seen = 0;
    for record in lookup.answers() {
        if let hickory_resolver::proto::rr::RData::TXT(txt) = &record.data {
            seen += 1;
            let value: Vec<u8> = txt.txt_data.iter().flat_map(|part| part.iter().copied()).collect();
            if value == expected.as_bytes() {
                return Ok(());
            }
        }
    }
    Err(AcmeError::new(
        ErrorType::IncorrectResponse,
        format!("none of the {seen} TXT records at {name} holds the expected digest"),
    ))
}
