//! Retirement of superseded certificates: a tier with `revoke_superseded_after = N` revokes a
//! certificate (reason superseded) N days after its successor passed a deployment check where
//! it was served, once no scan finds it served any more. Revocation goes through the CA, so it
//! is audited and reaches OCSP and the CRLs like any other.

use crate::{
    ca::{CertificateAuthority, Requester, RevocationReason},
    config::clm::ClmConfig,
    error::CaError,
    ledger::RevokeOutcome,
};

/// Certificates revoked per tier and run at most.
const BATCH: i64 = 500;

/// Revokes the superseded certificates whose time has come; returns how many.
pub async fn run(ca: &CertificateAuthority, config: &ClmConfig, now: i64) -> Result<u64, CaError> {
    let mut revoked = 0;
    for (tier, policy) in &config.tiers {
        let Some(days) = policy.revoke_superseded_after else { continue };
        let before = now - i64::from(days) * 86_400;
        for serial in ca.ledger().superseded_and_replaced(tier.as_str(), before, BATCH).await? {
            match ca.revoke(&serial, RevocationReason::Superseded, None, &Requester::system()).await? {
                RevokeOutcome::Revoked => revoked += 1,
                RevokeOutcome::AlreadyRevoked(_) | RevokeOutcome::HoldReleased => {}
            }
        }
    }
    Ok(revoked)
}
