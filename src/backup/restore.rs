//! `privca restore`: brings a backup back without undoing what happened after it. The changes
//! made after the snapshot are read from the ledger being replaced (rows after the snapshot's
//! last audit id, when it still opens and descends from the snapshot) or from an auditor's
//! audit export (verified offline, signed by the same checkpoint key, chained to the
//! snapshot's audit head). From them the restore
//!
//! * raises every CA's cRLNumber to the highest one used, so CRL numbers never go back;
//! * records every serial reserved or issued after the snapshot as aborted, so none is reused;
//! * re-applies every revocation (and `removeFromCRL`) through the CA.
//!
//! Everything is checked before anything is written. It refuses: without a source of later
//! changes (unless `--accept-unknown-changes`); when the source is not of this backup's lineage;
//! and when a certificate issued after the snapshot was revoked, since its row (and so its CRL
//! entry) cannot be rebuilt from the audit log.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use super::{copy_token_dir, pg_target, pg_tool, read_manifest, Manifest, PG_FILE, SQLITE_FILE, TOKENS_DIR};
use crate::{
    app::App,
    audit::{AuditEvent, AuditKind},
    ca::{Requester, RevocationReason},
    config::Config,
    error::{CaError, ErrorKind},
    ledger::{AuditRow, Ledger},
};

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The backup directory.
    pub from: PathBuf,
    /// An audit export covering the time after the backup (when the ledger is lost).
    pub audit_export: Option<PathBuf>,
    /// Restore even though nothing tells what happened after the backup.
    pub accept_unknown_changes: bool,
    /// Replace the token directory even when one exists.
    pub token: bool,
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    /// Where the later changes came from.
    pub source: &'static str,
    /// Revocations re-applied.
    pub revocations: Vec<String>,
    /// Serials reserved or issued after the snapshot, now recorded as never to be reused.
    pub lost_serials: Vec<String>,
    /// cRLNumber floors set, per CA.
    pub crl_numbers: Vec<(String, i64)>,
    /// Whether the token directory was replaced.
    pub token_restored: bool,
}

/// Changes after the snapshot.
#[derive(Debug, Default)]
struct Later {
    revoked: Vec<(String, String)>,
    unrevoked: Vec<String>,
    reserved: BTreeMap<String, (String, String, String)>,
    crl: BTreeMap<String, i64>,
}

impl Later {
    fn add(&mut self, row: &AuditRow) {
        let detail: serde_json::Value = serde_json::from_str(&row.detail).unwrap_or_default();
        let serial = row.serial.clone().unwrap_or_default();
        match row.event.as_str() {
            "revoked" if !serial.is_empty() => {
                let reason = detail["reason"].as_str().unwrap_or("unspecified").to_owned();
                self.revoked.push((serial, reason));
            }
            "unrevoked" if !serial.is_empty() => self.unrevoked.push(serial),
            "reserve" | "committed" if !serial.is_empty() => {
                let issuer = row.issuer_id.clone().unwrap_or_default();
                let profile = row.profile.clone().unwrap_or_default();
                self.reserved.entry(serial).or_insert((issuer, profile, row.actor.clone()));
            }
            "crl-reserve" | "crl-published" => {
                if let (Some(issuer), Some(n)) = (row.issuer_id.clone(), detail["crl_number"].as_i64()) {
                    let e = self.crl.entry(issuer).or_insert(n);
                    *e = (*e).max(n);
                }
            }
            _ => {}
        }
    }
}

fn refuse(why: String) -> CaError {
    CaError::new(ErrorKind::Conflict, format!("restore refused: {why}"))
}

/// The later changes from the ledger being replaced, if it opens and has rows.
async fn from_live(config: &Config, m: &Manifest) -> Result<Option<Later>, CaError> {
    if !config.database.is_postgres() && !config.data_dir.join(SQLITE_FILE).exists() {
        return Ok(None);
    }
    let url = config.database_url().map_err(|e| CaError::internal("database password").with_source(e))?;
    let Ok(live) = Ledger::connect_with(url.expose(), config.database.ca_file.as_deref(), 2).await else {
        return Ok(None);
    };
    let result = async {
        if live.last_audit_id().await? == 0 {
            return Ok(None);
        }
        // Lineage: the snapshot's chain head must be in this ledger's chain.
        if m.high_water.audit_seq > 0 {
            let at = live.sealed_audit(m.high_water.audit_seq - 1, 1).await?;
            if at.first().and_then(|r| r.hash.as_deref()) != Some(m.high_water.audit_hash.as_str()) {
                return Err(refuse(
                    "the current ledger does not descend from this backup (audit chains differ)".into(),
                ));
            }
        }
        let mut later = Later::default();
        let mut after = m.high_water.audit_id;
        loop {
            let rows = live.audit_after_id(after, 5000).await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            rows.iter().for_each(|r| later.add(r));
        }
        Ok(Some(later))
    }
    .await;
    live.close().await;
    result
}

/// The later changes from an audit export.
fn from_export(path: &Path, m: &Manifest) -> Result<Later, CaError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CaError::bad_request(format!("cannot read {}", path.display())).with_source(e))?;
    let doc: crate::audit::export::AuditExport =
        serde_json::from_slice(&bytes).map_err(|e| CaError::bad_request(format!("{}: {e}", path.display())))?;
    let report = crate::audit::export::verify_file(&doc);
    if let Some(f) = report.findings.first() {
        return Err(refuse(format!("the audit export does not verify: {}", f.0)));
    }
    if doc.checkpoint_key_sha256 != m.audit_key_sha256 {
        return Err(refuse("the audit export is signed by another checkpoint key than this CA's".into()));
    }
    let head = m.high_water.audit_seq;
    let first = doc.rows.first().map_or(i64::MAX, |r| r.seq);
    let linked = if head == 0 {
        first == 1
    } else {
        doc.rows.iter().any(|r| r.seq == head && r.hash == m.high_water.audit_hash)
    };
    if !linked {
        return Err(refuse(format!(
            "the audit export must start at or before seq {head} (the backup's audit head) and share its hash"
        )));
    }
    let mut later = Later::default();
    for row in doc.rows.iter().filter(|r| r.seq > head) {
        later.add(&AuditRow::from(row));
    }
    Ok(later)
}

/// Restores the backup in `opts.from` into `config`'s ledger and token (no privca may be
/// running on them).
pub async fn restore(config: Config, opts: &RestoreOptions) -> Result<RestoreReport, CaError> {
    let m = read_manifest(&opts.from)?;
    let postgres = config.database.is_postgres();
    if (m.database == "postgres") != postgres {
        return Err(refuse(format!("the backup is of a {} ledger, the configuration names another kind", m.database)));
    }
    let (later, source) = match from_live(&config, &m).await? {
        Some(l) => (l, "the current ledger"),
        None => match &opts.audit_export {
            Some(path) => (from_export(path, &m)?, "the audit export"),
            None if opts.accept_unknown_changes => (Later::default(), "none (accepted)"),
            None => {
                return Err(refuse(
                    "nothing tells what happened after the backup: the current ledger is missing or empty; pass \
                     --audit-export FILE (privca audit export, or /api/v1/audit/export, taken after the backup) or \
                     --accept-unknown-changes"
                        .into(),
                ))
            }
        },
    };
    // Serials the snapshot does not hold: reserved or issued after it.
    let later_serials: BTreeSet<String> = later.reserved.keys().cloned().collect();
    let known = if postgres {
        BTreeSet::new()
    } else {
        crate::ledger::sqlite_snapshot_holds(&opts.from.join(SQLITE_FILE), &later_serials)?
    };
    let lost: BTreeSet<String> = later_serials.difference(&known).cloned().collect();
    let unrecoverable: Vec<&String> = later.revoked.iter().map(|(s, _)| s).filter(|s| lost.contains(*s)).collect();
    if !unrecoverable.is_empty() {
        return Err(refuse(format!(
            "certificates issued after the backup were revoked ({}); their rows, and so their CRL entries, cannot be \
             rebuilt from the audit log: restore a later backup",
            unrecoverable.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }

    // Checks done: replace the ledger, then the token when asked or missing.
    let stamp = crate::ledger::now();
    if postgres {
        let target = pg_target(&config)?;
        let file = opts.from.join(PG_FILE);
        tokio::task::spawn_blocking(move || {
            pg_tool(
                "pg_restore",
                &target,
                &["--clean", "--if-exists", "--no-owner", "--single-transaction", &file.to_string_lossy()],
            )
        })
        .await
        .map_err(|e| CaError::internal("pg_restore task").with_source(e))??;
    } else {
        let live = config.data_dir.join(SQLITE_FILE);
        for suffix in ["", "-wal", "-shm"] {
            let f = PathBuf::from(format!("{}{suffix}", live.display()));
            if f.exists() {
                let aside = PathBuf::from(format!("{}{suffix}.before-restore-{stamp}", live.display()));
                std::fs::rename(&f, &aside)
                    .map_err(|e| CaError::internal(format!("cannot move {} aside", f.display())).with_source(e))?;
            }
        }
        std::fs::copy(opts.from.join(SQLITE_FILE), &live)
            .map_err(|e| CaError::internal(format!("cannot write {}", live.display())).with_source(e))?;
    }
    let tokens = config.data_dir.join(TOKENS_DIR);
    let token_missing = std::fs::read_dir(&tokens).map(|mut d| d.next().is_none()).unwrap_or(true);
    let token_restored = m.token == "softhsm" && (opts.token || token_missing);
    if token_restored {
        if tokens.exists() {
            let aside = config.data_dir.join(format!("{TOKENS_DIR}.before-restore-{stamp}"));
            std::fs::rename(&tokens, &aside)
                .map_err(|e| CaError::internal("cannot move the token directory aside").with_source(e))?;
        }
        copy_token_dir(&opts.from.join(TOKENS_DIR), &tokens)?;
    }

    // Re-apply through the CA.
    let app = App::open(config).await?;
    let ca = app.ca().await?;
    let by = Requester { protocol: "system", identity: "restore".into() };
    let mut report = RestoreReport { source, token_restored, ..Default::default() };
    for (issuer, n) in &later.crl {
        app.ledger.raise_crl_number(issuer, *n).await?;
        report.crl_numbers.push((issuer.clone(), *n));
    }
    let lost_rows: Vec<(String, String, String, String)> = later
        .reserved
        .iter()
        .filter(|(s, _)| lost.contains(*s))
        .map(|(s, (i, p, r))| (s.clone(), i.clone(), p.clone(), r.clone()))
        .collect();
    report.lost_serials = lost_rows.iter().map(|r| r.0.clone()).collect();
    for (serial, reason) in &later.revoked {
        let reason: RevocationReason = reason.parse().unwrap_or(RevocationReason::Unspecified);
        ca.revoke(serial, reason, None, &by).await?;
        report.revocations.push(serial.clone());
    }
    for serial in &later.unrevoked {
        ca.revoke(serial, RevocationReason::RemoveFromCrl, None, &by).await?;
    }
    let event = AuditEvent::new(AuditKind::Restored, by.to_string()).detail(serde_json::json!({
        "backup_created_at": m.created_at,
        "source": source,
        "revocations": report.revocations,
        "lost_serials": report.lost_serials,
        "crl_numbers": report.crl_numbers,
        "token_restored": token_restored,
    }));
    app.ledger.record_lost_serials(&lost_rows, &event).await?;
    app.seal().await;
    app.ledger.close().await;
    Ok(report)
}
