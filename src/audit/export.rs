//! Audit export: a range of the sealed chain, with the checkpoints inside it and the checkpoint
//! key's public key, as one JSON document an auditor re-verifies offline
//! (`privca audit verify --file`), with neither the ledger nor the token. The check is the
//! ledger verification's own walk ([`super::ChainWalk`]): every row's hash recomputed, every
//! link, every checkpoint's hash and signature. Rows after the last checkpoint of the file are
//! reported, since no signature covers them; the export ends at a checkpoint by default.
//!
//! The document names the key it trusts; the auditor compares `checkpoint_key_sha256` with the
//! fingerprint obtained from the CA operator out of band (`privca audit key`).

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};

use super::{ChainWalk, Finding, VerifyReport, GENESIS_HASH};
use crate::{
    error::CaError,
    ledger::{AuditRow, Checkpoint, Ledger},
};

/// The `format` of the document.
pub const FORMAT: &str = "privca-audit-export/1";
/// Most rows one export holds.
pub const MAX_ROWS: i64 = 200_000;

/// The exported document.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditExport {
    /// [`FORMAT`].
    pub format: String,
    /// SubjectPublicKeyInfo of the checkpoint key, DER, base64.
    pub checkpoint_key: String,
    /// SHA-256 of that DER, hex: compare it with the CA's published value.
    pub checkpoint_key_sha256: String,
    /// Sealed rows in chain order.
    pub rows: Vec<ExportRow>,
    /// Signed checkpoints whose position is within the rows.
    pub checkpoints: Vec<ExportCheckpoint>,
}

/// One sealed audit row.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRow {
    /// Insertion id.
    pub id: i64,
    /// Unix seconds.
    pub occurred_at: i64,
    /// Event name.
    pub event: String,
    /// Actor.
    pub actor: String,
    /// Serial.
    pub serial: Option<String>,
    /// Profile.
    pub profile: Option<String>,
    /// Issuer id.
    pub issuer_id: Option<String>,
    /// JSON detail as hashed.
    pub detail: String,
    /// Chain position.
    pub seq: i64,
    /// Previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// One signed checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportCheckpoint {
    /// Chain position it covers.
    pub seq: i64,
    /// Hash of row `seq`.
    pub head_hash: String,
    /// Unix seconds.
    pub signed_at: i64,
    /// Signature, base64.
    pub signature: String,
}

impl From<AuditRow> for ExportRow {
    fn from(r: AuditRow) -> Self {
        ExportRow {
            id: r.id,
            occurred_at: r.occurred_at,
            event: r.event,
            actor: r.actor,
            serial: r.serial,
            profile: r.profile,
            issuer_id: r.issuer_id,
            detail: r.detail,
            seq: r.seq.unwrap_or(-1),
            prev_hash: r.prev_hash.unwrap_or_default(),
            hash: r.hash.unwrap_or_default(),
        }
    }
}

impl From<&ExportRow> for AuditRow {
    fn from(r: &ExportRow) -> Self {
        AuditRow {
            id: r.id,
            occurred_at: r.occurred_at,
            event: r.event.clone(),
            actor: r.actor.clone(),
            serial: r.serial.clone(),
            profile: r.profile.clone(),
            issuer_id: r.issuer_id.clone(),
            detail: r.detail.clone(),
            seq: Some(r.seq),
            prev_hash: Some(r.prev_hash.clone()),
            hash: Some(r.hash.clone()),
        }
    }
}

/// SHA-256 of `spki_der`, hex.
pub fn key_fingerprint(spki_der: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, spki_der))
}

/// Exports sealed rows `from..=to` (`to`: the last checkpoint), at most [`MAX_ROWS`].
pub async fn export(ledger: &Ledger, spki_der: &[u8], from: i64, to: Option<i64>) -> Result<AuditExport, CaError> {
    let all = ledger.checkpoints().await?;
    let to = match to {
        Some(t) => t,
        None => all.last().map_or(0, |c| c.seq),
    };
    let from = from.max(1);
    if to < from {
        return Err(CaError::bad_request(format!("nothing to export: seq {from}..{to} (no checkpoint yet?)")));
    }
    if to - from + 1 > MAX_ROWS {
        return Err(CaError::bad_request(format!("at most {MAX_ROWS} rows per export")));
    }
    let mut rows = Vec::new();
    let mut after = from - 1;
    while after < to {
        let page = ledger.sealed_audit(after, (to - after).min(1000)).await?;
        let Some(last) = page.last() else { break };
        after = last.seq.unwrap_or(to);
        rows.extend(page.into_iter().filter(|r| r.seq.is_some_and(|s| s <= to)).map(ExportRow::from));
    }
    let checkpoints = all
        .into_iter()
        .filter(|c| (from..=to).contains(&c.seq))
        .map(|c| ExportCheckpoint {
            seq: c.seq,
            head_hash: c.head_hash,
            signed_at: c.signed_at,
            signature: Base64::encode_string(&c.signature),
        })
        .collect();
    Ok(AuditExport {
        format: FORMAT.into(),
        checkpoint_key: Base64::encode_string(spki_der),
        checkpoint_key_sha256: key_fingerprint(spki_der),
        rows,
        checkpoints,
    })
}

/// Verifies an export offline.
pub fn verify_file(doc: &AuditExport) -> VerifyReport {
    let mut findings = Vec::new();
    if doc.format != FORMAT {
        findings.push(Finding(format!("format `{}`, expected `{FORMAT}`", doc.format)));
    }
    let spki = Base64::decode_vec(&doc.checkpoint_key).unwrap_or_default();
    if key_fingerprint(&spki) != doc.checkpoint_key_sha256 {
        findings.push(Finding("checkpoint_key_sha256 is not the SHA-256 of checkpoint_key".into()));
    }
    let mut checkpoints = Vec::with_capacity(doc.checkpoints.len());
    for c in &doc.checkpoints {
        let signature = Base64::decode_vec(&c.signature).unwrap_or_default();
        checkpoints.push(Checkpoint {
            seq: c.seq,
            head_hash: c.head_hash.clone(),
            signed_at: c.signed_at,
            key_label: String::new(),
            signature,
        });
    }
    let Some(first) = doc.rows.first() else {
        let mut report = VerifyReport::default();
        report.findings.push(Finding("the export holds no rows".into()));
        report.findings.extend(findings);
        return report;
    };
    if first.seq == 1 && first.prev_hash != GENESIS_HASH {
        findings.push(Finding("row seq 1 does not start from the genesis hash".into()));
    }
    let mut walk = ChainWalk::new(first.seq - 1, first.prev_hash.clone(), &checkpoints);
    for row in &doc.rows {
        walk.row(&AuditRow::from(row));
    }
    let (mut report, last_seq, _) = walk.finish(&checkpoints, &spki);
    let signed_to = checkpoints.iter().map(|c| c.seq).max().unwrap_or(first.seq - 1);
    if signed_to < last_seq {
        report.findings.push(Finding(format!(
            "rows seq {}..{last_seq} are after the file's last checkpoint: no signature covers them",
            signed_to + 1
        )));
    }
    report.findings.extend(findings);
    report
}
