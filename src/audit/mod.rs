//! Audit events and the hash chain that makes the audit log tamper-evident.
//!
//! An [`AuditEvent`] is written to the ledger in the same transaction as the change it records,
//! and emitted on tracing target `privca::audit`. Rows are inserted unsealed; a sealer
//! ([`seal`]) periodically links the new rows into one chain in insertion order, each row
//! storing the hash of the previous one, and signs a checkpoint of the new head with an HSM key.
//! Sealing in batches keeps issuance from serialising on the chain head.
//!
//! [`verify`] walks the chain and the checkpoints: an edited row breaks its hash, a deleted row
//! breaks the links or leaves a checkpoint pointing past the end, and a chain recomputed without
//! the HSM no longer matches the signed checkpoints. Certificates whose `committed` row is
//! missing are reported too, which catches the deletion of the newest rows together with their
//! checkpoint.

use serde::Serialize;

pub mod export;

use crate::{
    ledger::{AuditRow, Checkpoint, Ledger, SealedLink},
    signer::{JobClass, SigningAlgorithm, SigningService},
};

/// The hash of the (virtual) row 0.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Label of the audit checkpoint key in the token.
pub const CHECKPOINT_KEY: &str = "privca-audit";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// An ACME account was created.
    AcmeAccountCreated,
    /// An ACME account's key, contact or status changed.
    AcmeAccountUpdated,
    /// An ACME external account binding key was created.
    AcmeEabKeyCreated,
    /// An admin user was created or changed (password, TOTP, disabled).
    AdminUserChanged,
    /// An admin API token was created.
    AdminTokenCreated,
    /// An admin API token was revoked.
    AdminTokenRevoked,
    /// A dashboard login succeeded.
    AdminLogin,
    /// A dashboard login failed.
    AdminLoginFailed,
    /// An authenticated admin call was refused (role, CSRF, ownership).
    AdminRefused,
    /// Approval granted.
    ApprovalApproved,
    /// Approval refused.
    ApprovalDenied,
    /// Request stored for approval.
    ApprovalRequested,
    /// A certificate was flagged for early renewal.
    RenewEarlyFlagged,
    /// A CA certificate (root or issuer) was stored.
    CaCertificate,
    /// A certificate was committed to the ledger.
    Committed,
    /// CLM notices for a certificate were acknowledged or muted.
    ClmMuted,
    /// Dead-lettered CLM notifications were queued again.
    ClmOutboxRetried,
    /// A certificate's inventory fields (owner, tier, application, renewal method, tags) changed.
    InventoryChanged,
    /// A CLM owner record was created or changed.
    OwnerChanged,
    /// A signed CRL was published.
    CrlPublished,
    /// A cRLNumber was reserved before signing.
    CrlReserve,
    /// A discovery scan changed the inventory (new endpoint, new leaf, new certificate).
    EndpointSeen,
    /// An EST user was created or its password reset.
    EstUserAdded,
    /// A request failed (policy, bad CSR, signing error).
    Failed,
    /// Certificates privca did not issue were imported into the inventory.
    InventoryImported,
    /// A serial was reserved before signing.
    Reserve,
    /// A certificate was revoked.
    Revoked,
    /// A one-time SCEP challenge password was created.
    ScepChallengeCreated,
    /// A certificate revocation was lifted (`removeFromCRL`).
    Unrevoked,
    /// The ledger was restored from a backup, and later changes re-applied.
    Restored,
}

impl AuditKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AcmeAccountCreated => "acme-account-created",
            Self::AcmeAccountUpdated => "acme-account-updated",
            Self::AcmeEabKeyCreated => "acme-eab-key-created",
            Self::AdminUserChanged => "admin-user-changed",
            Self::AdminTokenCreated => "admin-token-created",
            Self::AdminTokenRevoked => "admin-token-revoked",
            Self::AdminLogin => "admin-login",
            Self::AdminLoginFailed => "admin-login-failed",
            Self::AdminRefused => "admin-refused",
            Self::ApprovalApproved => "approval-approved",
            Self::ApprovalDenied => "approval-denied",
            Self::ApprovalRequested => "approval-requested",
            Self::RenewEarlyFlagged => "renew-early-flagged",
            Self::CaCertificate => "ca-certificate",
            Self::Committed => "committed",
            Self::ClmMuted => "clm-muted",
            Self::ClmOutboxRetried => "clm-outbox-retried",
            Self::InventoryChanged => "inventory-changed",
            Self::OwnerChanged => "owner-changed",
            Self::CrlPublished => "crl-published",
            Self::CrlReserve => "crl-reserve",
            Self::EndpointSeen => "endpoint-seen",
            Self::EstUserAdded => "est-user-added",
            Self::Failed => "failed",
            Self::InventoryImported => "inventory-imported",
            Self::Reserve => "reserve",
            Self::Revoked => "revoked",
            Self::ScepChallengeCreated => "scep-challenge-created",
            Self::Unrevoked => "unrevoked",
            Self::Restored => "restored",
        }
    }
}

/// One audit event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// Who did it (`cli:<user>`, `system`, `acme:…`).
    pub actor: String,
    /// Certificate serial, if any.
    pub serial: Option<String>,
    /// Profile, if any.
    pub profile: Option<String>,
    /// Issuer id, if any.
    pub issuer_id: Option<String>,
    /// Structured detail (never a key, PIN or full CSR).
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event with no serial/profile/issuer and empty detail.
    pub fn new(kind: AuditKind, actor: impl Into<String>) -> Self {
        Self { kind, actor: actor.into(), serial: None, profile: None, issuer_id: None, detail: serde_json::json!({}) }
    }

    /// Sets the serial.
    pub fn serial(mut self, serial: impl Into<String>) -> Self {
        self.serial = Some(serial.into());
        self
    }

    /// Sets the profile.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// Sets the issuer id.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer_id = Some(issuer.into());
        self
    }

    /// Sets the detail object.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Emits the event on tracing target `privca::audit`.
    pub fn trace(&self) {
        tracing::info!(
            target: "privca::audit",
            event = self.kind.as_str(),
            actor = %self.actor,
            serial = self.serial.as_deref().unwrap_or(""),
            profile = self.profile.as_deref().unwrap_or(""),
            issuer = self.issuer_id.as_deref().unwrap_or(""),
            detail = %self.detail,
        );
    }
}

#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    id: i64,
    occurred_at: i64,
    event: &'a str,
    actor: &'a str,
    serial: Option<&'a str>,
    profile: Option<&'a str>,
    issuer_id: Option<&'a str>,
    detail: &'a str,
}

/// The chain hash of `row` at position `seq` after `prev_hash`.
pub fn row_hash(prev_hash: &str, seq: i64, row: &AuditRow) -> String {
    let canonical = Canonical {
        seq,
        id: row.id,
        occurred_at: row.occurred_at,
        event: &row.event,
        actor: &row.actor,
        serial: row.serial.as_deref(),
        profile: row.profile.as_deref(),
        issuer_id: row.issuer_id.as_deref(),
        detail: &row.detail,
    };
    let body = serde_json::to_string(&canonical).unwrap_or_default();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(b"\n");
    ctx.update(body.as_bytes());
    hex::encode(ctx.finish())
}

/// The bytes a checkpoint signature covers.
pub fn checkpoint_message(seq: i64, head_hash: &str, signed_at: i64) -> Vec<u8> {
    format!("privca-audit-checkpoint/v1\n{seq}\n{head_hash}\n{signed_at}\n").into_bytes()
}

/// Why sealing failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Ledger failure.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// Signing failure.
    #[error(transparent)]
    Signer(#[from] crate::signer::SignerError),
}

/// Rows linked per pass of [`seal`] (one transaction, one checkpoint signature).
const SEAL_BATCH: usize = 500;

/// Links unsealed rows into the chain in passes of up to [`SEAL_BATCH`] rows, each ending with
/// a signed checkpoint of the new head, until a pass finds fewer than that; returns how many
/// rows were sealed. Rows written during that last pass wait for the next call (a tick of
/// `audit.seal_interval` in `serve`): looping until none were left had each pass find the few
/// rows written during the one before, so under steady issuance the sealer never stopped and
/// signed a checkpoint per handful of rows. Safe to run from several instances: a sealer that
/// lost the race gets a conflict and leaves the rows to the winner.
pub async fn seal(ledger: &Ledger, signing: &SigningService) -> Result<usize, SealError> {
    let mut total = 0;
    loop {
        let rows = ledger.unsealed_audit(SEAL_BATCH as i64).await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let full = rows.len() == SEAL_BATCH;
        tracing::debug!(rows = rows.len(), "audit seal pass started");
        let (head_seq, head_hash) = ledger.audit_head().await?;
        let mut links = Vec::with_capacity(rows.len());
        let (mut seq, mut prev) = (head_seq, head_hash.clone());
        for row in &rows {
            seq += 1;
            let hash = row_hash(&prev, seq, row);
            links.push(SealedLink { id: row.id, seq, prev_hash: prev, hash: hash.clone() });
            prev = hash;
        }
        let signed_at = crate::ledger::now();
        let algorithm = SigningAlgorithm::for_key(signing.key_info(CHECKPOINT_KEY)?.algorithm, false);
        let signature = signing
            .sign(JobClass::Issuance, CHECKPOINT_KEY, algorithm, checkpoint_message(seq, &prev, signed_at))
            .await?;
        let checkpoint = Checkpoint { seq, head_hash: prev, signed_at, key_label: CHECKPOINT_KEY.into(), signature };
        match ledger.seal_audit(head_seq, &links, &checkpoint).await {
            Ok(()) => {
                total += links.len();
                tracing::debug!(rows = links.len(), seq, "audit seal pass done");
            }
            Err(crate::ledger::LedgerError::Conflict(_)) => {
                tracing::debug!("audit seal pass done: another sealer was first");
                return Ok(total);
            }
            Err(e) => return Err(e.into()),
        }
        if !full {
            return Ok(total);
        }
    }
}

/// A problem found by [`verify`], naming where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding(pub String);

/// Summary of a verification.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Sealed rows checked.
    pub rows: i64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Rows not sealed yet (not protected until the next seal).
    pub unsealed: i64,
    /// Problems, first one first.
    pub findings: Vec<Finding>,
}

/// The walk along the chain that [`verify`] and [`export::verify_file`] share: each row in
/// chain order is checked for its position, its link to the previous row and its own hash, and
/// each checkpoint at or before it for the hash it signed.
pub(crate) struct ChainWalk<'c> {
    pub(crate) report: VerifyReport,
    expected_seq: i64,
    prev: String,
    checkpoints: std::iter::Peekable<std::slice::Iter<'c, Checkpoint>>,
}

impl<'c> ChainWalk<'c> {
    /// A walk that expects seq `after + 1` next, linked to `prev`.
    pub(crate) fn new(after: i64, prev: String, checkpoints: &'c [Checkpoint]) -> Self {
        ChainWalk {
            report: VerifyReport::default(),
            expected_seq: after,
            prev,
            checkpoints: checkpoints.iter().peekable(),
        }
    }

    /// Checks the next row.
    pub(crate) fn row(&mut self, row: &AuditRow) {
        let report = &mut self.report;
        let seq = row.seq.unwrap_or(-1);
        self.expected_seq += 1;
        if seq != self.expected_seq {
            report.findings.push(Finding(format!(
                "audit row seq {} is missing (next row found is seq {seq}, id {})",
                self.expected_seq, row.id
            )));
            self.expected_seq = seq;
        }
        if row.prev_hash.as_deref() != Some(self.prev.as_str()) {
            report.findings.push(Finding(format!(
                "audit row seq {seq} (id {}): prev_hash does not match the hash of seq {}",
                row.id,
                seq - 1
            )));
        }
        let computed = row_hash(row.prev_hash.as_deref().unwrap_or(""), seq, row);
        if row.hash.as_deref() != Some(computed.as_str()) {
            report.findings.push(Finding(format!(
                "audit row seq {seq} (id {}, event {}): content does not match its hash (row edited)",
                row.id, row.event
            )));
        }
        while let Some(cp) = self.checkpoints.peek() {
            if cp.seq > seq {
                break;
            }
            if cp.seq == seq && row.hash.as_deref() != Some(cp.head_hash.as_str()) {
                report
                    .findings
                    .push(Finding(format!("checkpoint at seq {seq} does not match the chain (chain rewritten)")));
            }
            report.checkpoints += 1;
            self.checkpoints.next();
        }
        self.prev = row.hash.clone().unwrap_or_default();
        report.rows += 1;
    }

    /// Ends the walk: checkpoints past the last row are findings, and every checkpoint's
    /// signature is checked against `spki_der`. Returns the report, the last seq and hash.
    pub(crate) fn finish(mut self, all: &[Checkpoint], spki_der: &[u8]) -> (VerifyReport, i64, String) {
        for cp in self.checkpoints {
            self.report.findings.push(Finding(format!(
                "checkpoint at seq {} points past the last audit row (seq {}): rows were deleted",
                cp.seq, self.expected_seq
            )));
        }
        let algorithm = checkpoint_algorithm(spki_der);
        for cp in all {
            let msg = checkpoint_message(cp.seq, &cp.head_hash, cp.signed_at);
            if crate::signer::verify_spki(spki_der, algorithm, &msg, &cp.signature).is_err() {
                self.report.findings.push(Finding(format!("checkpoint at seq {}: signature does not verify", cp.seq)));
            }
        }
        (self.report, self.expected_seq, self.prev)
    }
}

/// Walks the chain and checkpoints; `spki_der` is the checkpoint key's public key from the token.
pub async fn verify(ledger: &Ledger, spki_der: &[u8]) -> Result<VerifyReport, crate::ledger::LedgerError> {
    // The head first: a sealer running meanwhile (the server, any CLI command) moves it together
    // with the rows and checkpoint it adds, so the chain up to the head read here is complete,
    // and what lies beyond it is left for the next verification.
    let (head_seq, head_hash) = ledger.audit_head().await?;
    let checkpoints: Vec<_> = ledger.checkpoints().await?.into_iter().filter(|c| c.seq <= head_seq).collect();
    let mut walk = ChainWalk::new(0, GENESIS_HASH.to_owned(), &checkpoints);
    let mut after = 0i64;
    'read: loop {
        let rows = ledger.sealed_audit(after, 1000).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            after = row.seq.unwrap_or(-1);
            if after > head_seq {
                break 'read;
            }
            walk.row(row);
        }
    }
    let (mut report, expected_seq, prev) = walk.finish(&checkpoints, spki_der);
    // Sealed rows beyond the head read first are a sealer's only if the head has moved since.
    if after > head_seq && ledger.audit_head().await?.0 == head_seq {
        report.findings.push(Finding(format!("sealed rows after the chain head (seq {head_seq}): rows were added")));
    }
    if head_seq != expected_seq || (head_seq > 0 && head_hash != prev) {
        report.findings.push(Finding(format!(
            "chain head says seq {head_seq} but the chain ends at seq {expected_seq}: rows were deleted or added"
        )));
    }
    if let Some(last) = checkpoints.last() {
        if last.seq != head_seq {
            report.findings.push(Finding(format!(
                "last checkpoint is at seq {} but the chain head is at seq {head_seq}",
                last.seq
            )));
        }
    }
    for serial in ledger.certificates_without_commit_audit().await? {
        report.findings.push(Finding(format!("certificate {serial} has no `committed` audit row (rows deleted)")));
    }
    report.unsealed = ledger.unsealed_count().await?;
    Ok(report)
}

fn checkpoint_algorithm(spki_der: &[u8]) -> SigningAlgorithm {
    use der::Decode;
    let key = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .ok()
        .and_then(|s| crate::signer::KeyAlgorithm::from_spki(&s))
        .unwrap_or(crate::signer::KeyAlgorithm::EcdsaP256);
    SigningAlgorithm::for_key(key, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, detail: &str) -> AuditRow {
        AuditRow {
            id,
            occurred_at: 1,
            event: "committed".into(),
            actor: "cli".into(),
            serial: Some("01".into()),
            profile: None,
            issuer_id: None,
            detail: detail.into(),
            seq: None,
            prev_hash: None,
            hash: None,
        }
    }

    #[test]
    fn hash_depends_on_content_position_and_previous() {
        let a = row_hash(GENESIS_HASH, 1, &row(1, "{}"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, row_hash(GENESIS_HASH, 1, &row(1, "{\"x\":1}")));
        assert_ne!(a, row_hash(GENESIS_HASH, 2, &row(1, "{}")));
        assert_ne!(a, row_hash(&a, 1, &row(1, "{}")));
        assert_eq!(a, row_hash(GENESIS_HASH, 1, &row(1, "{}")));
    }
}
