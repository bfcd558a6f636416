//! privca's own certificates for keys in the token: the delegated OCSP responders and the SCEP
//! RA. Each instance serves the ledger's newest certificate of the profile and issuer while it
//! has more than a third of its life left; when it has not, exactly one successor is issued
//! across every instance sharing the ledger. The successor's reservation names the certificate
//! it follows (requester `system:<profile>@<issuer>#<serial>`, or `#first`) and is made with
//! `one_per_requester`, so of several instances that find the same certificate due at once the
//! ledger's unique index lets one issue; the others wait for its commit and serve what it made.

use std::time::Duration;

use der::{Decode, Encode};

use super::{request::Requester, CaError, CertificateAuthority, ErrorKind, IssuanceRequest, IssueOutcome};
use crate::{ledger::CertRecord, policy::Profile};

/// How long an instance that lost the race waits for the winner's commit.
const WINNER_WAIT: Duration = Duration::from_secs(10);
/// How often it looks while it waits.
const WINNER_POLL: Duration = Duration::from_millis(200);

/// The certificate to serve for the token key `spki_der` under the built-in `profile`: the
/// ledger's newest valid one for that key with more than a third of its life left, else the
/// one successor (issued here, or by another instance at the same moment).
pub async fn current_or_issue(
    ca: &CertificateAuthority,
    profile: &Profile,
    spki_der: &[u8],
) -> Result<CertRecord, CaError> {
    let issuer = profile.issuer.as_str();
    let ledger = ca.ledger();
    // What a successor would follow is read first: a certificate committed after this read is
    // then seen by the next one, and served if usable, rather than followed by another.
    let follows = ledger.newest_serial(issuer, &profile.name).await?.unwrap_or_else(|| "first".into());
    let current = ledger.latest_certificate(issuer, &profile.name).await?;
    if let Some(rec) = current.as_ref().filter(|r| usable(r, spki_der, crate::ledger::now())) {
        return Ok(rec.clone());
    }
    let mut request = IssuanceRequest::own_key(&profile.name, spki_der.to_vec());
    request.requester = Requester { protocol: "system", identity: format!("{}@{issuer}#{follows}", profile.name) };
    request.one_per_requester = true;
    match ca.issue_with_profile(request, profile).await {
        Ok(IssueOutcome::Issued(cert)) => {
            tracing::info!(profile = %profile.name, issuer, serial = %cert.record.serial, "issued privca's own certificate");
            Ok(cert.record)
        }
        Ok(IssueOutcome::Pending(_)) => {
            Err(CaError::internal(format!("{} certificate held for approval", profile.name)))
        }
        Err(e) if e.kind() == ErrorKind::Conflict => {
            tracing::debug!(profile = %profile.name, issuer, "another instance issues the successor; waiting for it");
            let deadline = tokio::time::Instant::now() + WINNER_WAIT;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(WINNER_POLL).await;
                if let Some(rec) = ledger.latest_certificate(issuer, &profile.name).await? {
                    if usable(&rec, spki_der, crate::ledger::now()) {
                        return Ok(rec);
                    }
                }
            }
            // The winner did not commit in time (it stopped, or is slow): the certificate
            // served so far while it is valid; its reservation is aborted as interrupted later
            // and the next check issues.
            current.filter(|r| r.not_after > crate::ledger::now()).ok_or_else(|| {
                CaError::new(ErrorKind::Unavailable, format!("no {} certificate yet for {issuer}", profile.name))
            })
        }
        Err(e) => Err(e),
    }
}

/// For the token key `spki_der`, with more than a third of its life left at `now`.
fn usable(rec: &CertRecord, spki_der: &[u8], now: i64) -> bool {
    let same_key = x509_cert::Certificate::from_der(&rec.der)
        .ok()
        .and_then(|c| c.tbs_certificate.subject_public_key_info.to_der().ok())
        .is_some_and(|k| k == spki_der);
    same_key && super::more_than_a_third_left(rec.not_before, rec.not_after, now)
}
