//! Units of work of the CLM policy job and the notification outbox: the certificates due for a
//! look, the decisions about them (outbox rows and the time of the next look in `clm_looks`,
//! written in one unit so that a decision is taken once across restarts), acknowledgements and
//! mutes, and the delivery states of outbox messages. The policy job's outbox rows hold the
//! decision only (certificate, event, threshold in the key, channel, recipient); their text is
//! rendered when they are sent, from [`Ledger::policy_views`].

use serde::Serialize;
use sqlx::{any::AnyRow, Row};

use super::{
    audit, now,
    statement::{Statement, Value},
    Ledger, LedgerError,
};

/// Outbox rows per INSERT (11 parameters each).
const MESSAGES_PER_STATEMENT: usize = 500;

/// Certificates read per statement by [`Ledger::policy_views`].
const VIEWS_PER_STATEMENT: usize = 100;

/// Next looks per upsert (2 parameters each).
const LOOKS_PER_STATEMENT: usize = 1000;
use crate::{audit::AuditEvent, policy::Tier};

/// A live certificate inside the notice window whose next look is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCandidate {
    /// SHA-256 fingerprint (the key of every CLM decision).
    pub fingerprint: String,
    /// Serial, hex.
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// SANs.
    pub sans: Vec<String>,
    /// privca issuer id or external issuer DN.
    pub issuer: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Owner name.
    pub owner: String,
    /// Tier.
    pub tier: Tier,
    /// Flagged for early renewal at this time.
    pub renew_early_at: Option<i64>,
    /// Serial of a valid successor (renewal chain), if any.
    pub successor: Option<String>,
    /// The successor the ledger records for it (`superseded_by`) until this decision.
    pub recorded_successor: Option<String>,
    /// An endpoint serves this certificate at its last scan.
    pub served: bool,
    /// Acknowledged or muted until this time.
    pub muted_until: Option<i64>,
    /// Imported or discovered, not issued by privca.
    pub external: bool,
}

/// A message the policy job decided to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewMessage {
    /// Unique per certificate × event × channel: a second decision of the same is a no-op.
    pub dedup_key: String,
    /// `expiry`, `escalation`, `renewal-requested`.
    pub event: String,
    /// The certificate.
    pub fingerprint: Option<String>,
    /// Owner the message is about.
    pub owner: String,
    /// `email`, `webhook`, `sms`.
    pub channel: String,
    /// Address, URL or phone number.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
    /// Send it (`pending`), or record that it cannot be (`dead`, with `error`).
    pub state: &'static str,
    /// Why it cannot be sent.
    pub error: Option<String>,
}

/// The policy job's decision about one certificate.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The certificate.
    pub fingerprint: String,
    /// In `external_certificates`.
    pub external: bool,
    /// When to look at it again.
    pub next_at: i64,
    /// Its successor, recorded as `superseded_by`.
    pub superseded_by: Option<String>,
    /// `superseded_by` differs from what the ledger records (only then is it written).
    pub successor_changed: bool,
    /// Messages to queue.
    pub messages: Vec<NewMessage>,
}

/// An outbox row.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxMessage {
    /// Row id.
    pub id: i64,
    /// Unique key of the decision.
    pub dedup_key: String,
    /// Event name.
    pub event: String,
    /// The certificate.
    pub fingerprint: Option<String>,
    /// Owner.
    pub owner: String,
    /// Channel.
    pub channel: String,
    /// Recipient.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// `pending`, `sending`, `sent` or `dead`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Next attempt (pending) or end of the sender's lease (sending).
    pub next_attempt_at: i64,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// When the decision was taken.
    pub created_at: i64,
    /// When it was delivered.
    pub sent_at: Option<i64>,
}

/// The policy view of a row `c` of `certificates`: the candidate columns, the successor
/// (a valid certificate renewing it, else a later valid one of the same owner and names),
/// whether an endpoint serves it and its mute.
macro_rules! privca_candidate_from {
    () => {
        "SELECT c.fingerprint_sha256 AS fingerprint, c.serial, c.subject, c.sans, \
     c.issuer_id AS issuer, c.not_after, c.owner, c.tier, c.renew_early_at, c.superseded_by AS recorded_successor, \
     COALESCE((SELECT s.serial FROM certificates s WHERE s.renews_serial = c.serial AND s.status = 'valid' LIMIT 1), \
      (SELECT s.serial FROM certificates s WHERE s.sans = c.sans AND s.owner || '' = c.owner AND s.status = 'valid' \
       AND (s.not_before > c.not_before OR (s.not_before = c.not_before AND s.serial > c.serial)) LIMIT 1)) \
       AS successor, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM endpoints e WHERE e.fingerprint_sha256 = c.fingerprint_sha256) \
       THEN 1 ELSE 0 END AS BIGINT) AS served, \
     (SELECT m.until_at FROM clm_mutes m WHERE m.fingerprint = c.fingerprint_sha256) AS muted_until, \
     CAST(0 AS BIGINT) AS external \
     FROM certificates c "
    };
}

/// The candidate columns of privca's certificates (`$1` now, `$2` end of the notice window).
/// The successor by names is looked up by the names (`s.owner || ''` keeps SQLite off the owner
/// index, which holds thousands of certificates per owner).
/// privca's own certificates (OCSP responders, its TLS and SCEP RA certificates: requesters
/// `system:…`) are left out: privca renews them itself.
const PRIVCA_CANDIDATES: &str = concat!(
    privca_candidate_from!(),
    "WHERE c.status = 'valid' AND c.not_after > $1 AND c.not_after <= $2 \
     AND c.requester NOT LIKE 'system:%' \
     AND NOT EXISTS (SELECT 1 FROM clm_looks l WHERE l.fingerprint = c.fingerprint_sha256 AND l.next_at > $1) \
     AND (c.not_after, c.fingerprint_sha256) > ($4, $5) \
     ORDER BY c.not_after, c.fingerprint_sha256 LIMIT $3"
);

/// The same for privca's certificates flagged for early renewal that expire after the notice
/// window (`$2`): their renewal is due whatever their expiry. (`+c.not_after` keeps SQLite on
/// the small index of flagged certificates rather than walking the notAfter index.)
const FLAGGED_CANDIDATES: &str = concat!(
    privca_candidate_from!(),
    "WHERE c.renew_early_at IS NOT NULL AND c.status = 'valid' AND +c.not_after > $2 \
     AND c.requester NOT LIKE 'system:%' \
     AND NOT EXISTS (SELECT 1 FROM clm_looks l WHERE l.fingerprint = c.fingerprint_sha256 AND l.next_at > $1) \
     AND (+c.not_after, c.fingerprint_sha256) > ($4, $5) \
     ORDER BY c.not_after, c.fingerprint_sha256 LIMIT $3"
);

/// The same for external certificates.
const EXTERNAL_CANDIDATES: &str = "SELECT x.fingerprint_sha256 AS fingerprint, x.serial, x.subject, x.sans, \
     x.issuer, x.not_after, x.owner, x.tier, CAST(NULL AS BIGINT) AS renew_early_at, \
     CAST(NULL AS TEXT) AS recorded_successor, \
     CAST(NULL AS TEXT) AS successor, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM endpoints e WHERE e.fingerprint_sha256 = x.fingerprint_sha256) \
       THEN 1 ELSE 0 END AS BIGINT) AS served, \
     (SELECT m.until_at FROM clm_mutes m WHERE m.fingerprint = x.fingerprint_sha256) AS muted_until, \
     CAST(1 AS BIGINT) AS external \
     FROM external_certificates x WHERE x.not_after > $1 AND x.not_after <= $2 \
     AND NOT EXISTS (SELECT 1 FROM clm_looks l WHERE l.fingerprint = x.fingerprint_sha256 AND l.next_at > $1) \
     AND (x.not_after, x.fingerprint_sha256) > ($4, $5) \
     ORDER BY x.not_after, x.fingerprint_sha256 LIMIT $3";

fn candidate(r: &AnyRow) -> Result<PolicyCandidate, LedgerError> {
    let sans: String = r.try_get("sans")?;
    let tier: String = r.try_get("tier")?;
    Ok(PolicyCandidate {
        fingerprint: r.try_get("fingerprint")?,
        serial: r.try_get("serial")?,
        subject: r.try_get("subject")?,
        sans: serde_json::from_str(&sans).map_err(|e| LedgerError::Corrupt(format!("sans: {e}")))?,
        issuer: r.try_get("issuer")?,
        not_after: r.try_get("not_after")?,
        owner: r.try_get("owner")?,
        tier: Tier::stored(tier),
        renew_early_at: r.try_get("renew_early_at")?,
        successor: r.try_get("successor")?,
        recorded_successor: r.try_get("recorded_successor")?,
        served: r.try_get::<i64, _>("served")? != 0,
        muted_until: r.try_get("muted_until")?,
        external: r.try_get::<i64, _>("external")? != 0,
    })
}

/// The columns [`outbox_message`] reads, for `concat!` into static SQL.
macro_rules! outbox_columns {
    () => {
        "id, dedup_key, event, fingerprint, owner, channel, recipient, subject, body, state, attempts, \
         next_attempt_at, last_error, created_at, sent_at"
    };
}

fn outbox_message(r: &AnyRow) -> Result<OutboxMessage, LedgerError> {
    Ok(OutboxMessage {
        id: r.try_get("id")?,
        dedup_key: r.try_get("dedup_key")?,
        event: r.try_get("event")?,
        fingerprint: r.try_get("fingerprint")?,
        owner: r.try_get("owner")?,
        channel: r.try_get("channel")?,
        recipient: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

pub(super) fn insert_message(m: &NewMessage, t: i64) -> Statement {
    Statement::new(
        "INSERT INTO clm_outbox (dedup_key, event, fingerprint, owner, channel, recipient, subject, body, state, \
         last_error, attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $11) \
         ON CONFLICT (dedup_key) DO NOTHING",
        vec![
            (&m.dedup_key).into(),
            (&m.event).into(),
            m.fingerprint.clone().into(),
            (&m.owner).into(),
            (&m.channel).into(),
            (&m.recipient).into(),
            (&m.subject).into(),
            (&m.body).into(),
            m.state.into(),
            m.error.clone().into(),
            t.into(),
        ],
    )
}

/// The decisions as multi-row statements (SQLite: parameters are cheap there, and each
/// statement is planned once per shape).
fn decisions_as_rows(decisions: &[Decision], messages: &[&NewMessage], t: i64) -> Vec<Statement> {
    let mut unit = Vec::new();
    for chunk in messages.chunks(MESSAGES_PER_STATEMENT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p: Vec<String> = (1..=11).map(|k| format!("${}", i * 11 + k)).collect();
                format!("({}, 0, {}, {})", p[..10].join(", "), p[10], p[10])
            })
            .collect();
        let sql = format!(
            "INSERT INTO clm_outbox (dedup_key, event, fingerprint, owner, channel, recipient, subject, body, \
             state, last_error, attempts, next_attempt_at, created_at) VALUES {} ON CONFLICT (dedup_key) DO NOTHING",
            rows.join(", ")
        );
        unit.push(Statement::built(sql, chunk.iter().flat_map(|m| insert_message(m, t).values).collect()));
    }
    for chunk in decisions.chunks(LOOKS_PER_STATEMENT) {
        let rows: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", i * 2 + 1, i * 2 + 2)).collect();
        let sql = format!(
            "INSERT INTO clm_looks (fingerprint, next_at) VALUES {} \
             ON CONFLICT (fingerprint) DO UPDATE SET next_at = excluded.next_at",
            rows.join(", ")
        );
        let values = chunk.iter().flat_map(|d| [Value::from(&d.fingerprint), d.next_at.into()]).collect();
        unit.push(Statement::built(sql, values));
    }
    unit
}

/// A batch that does not serialize (it cannot: strings and integers only).
fn json_error(e: serde_json::Error) -> LedgerError {
    LedgerError::Unavailable(sqlx::Error::Encode(Box::new(e)))
}

/// One looks row of [`decisions_as_json`].
#[derive(Serialize)]
struct Look<'a> {
    fingerprint: &'a str,
    next_at: i64,
}

/// The decisions as two statements whatever their number (PostgreSQL): the outbox rows and
/// the next looks each go as one JSON parameter that `json_to_recordset` unpacks on the
/// server, so a batch costs one parse, one plan and one round trip per table rather than
/// thousands of bound parameters.
fn decisions_as_json(decisions: &[Decision], messages: &[&NewMessage], t: i64) -> Result<Vec<Statement>, LedgerError> {
    let mut unit = Vec::new();
    if !messages.is_empty() {
        unit.push(Statement::new(
            "INSERT INTO clm_outbox (dedup_key, event, fingerprint, owner, channel, recipient, subject, body, \
             state, last_error, attempts, next_attempt_at, created_at) \
             SELECT m.dedup_key, m.event, m.fingerprint, m.owner, m.channel, m.recipient, m.subject, m.body, \
             m.state, m.error, 0, $2, $2 FROM json_to_recordset(CAST($1 AS JSON)) AS m(dedup_key TEXT, event TEXT, \
             fingerprint TEXT, owner TEXT, channel TEXT, recipient TEXT, subject TEXT, body TEXT, state TEXT, \
             error TEXT) ON CONFLICT (dedup_key) DO NOTHING",
            vec![serde_json::to_string(messages).map_err(json_error)?.into(), t.into()],
        ));
    }
    if !decisions.is_empty() {
        let looks: Vec<Look<'_>> =
            decisions.iter().map(|d| Look { fingerprint: &d.fingerprint, next_at: d.next_at }).collect();
        unit.push(Statement::new(
            "INSERT INTO clm_looks (fingerprint, next_at) SELECT l.fingerprint, l.next_at \
             FROM json_to_recordset(CAST($1 AS JSON)) AS l(fingerprint TEXT, next_at BIGINT) \
             ON CONFLICT (fingerprint) DO UPDATE SET next_at = excluded.next_at",
            vec![serde_json::to_string(&looks).map_err(json_error)?.into()],
        ));
    }
    Ok(unit)
}

/// Which certificates [`Ledger::policy_candidates`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateSet {
    /// privca's, expiring inside the notice window.
    Privca,
    /// privca's flagged for early renewal, expiring after the notice window.
    Flagged,
    /// Imported and discovered ones, expiring inside the notice window.
    External,
}

impl Ledger {
    /// Up to `limit` live certificates of `set` whose next look is due at `at` (`window_end`:
    /// the end of the notice window), in (notAfter, fingerprint) order after `after`, the last
    /// one of the previous page.
    pub async fn policy_candidates(
        &self,
        set: CandidateSet,
        at: i64,
        window_end: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<PolicyCandidate>, LedgerError> {
        let (after_time, after_fp) = after.unwrap_or((at, String::new()));
        let sql = match set {
            CandidateSet::Privca => PRIVCA_CANDIDATES,
            CandidateSet::Flagged => FLAGGED_CANDIDATES,
            CandidateSet::External => EXTERNAL_CANDIDATES,
        };
        let rows = sqlx::query(sql)
            .bind(at)
            .bind(window_end)
            .bind(limit)
            .bind(after_time)
            .bind(after_fp)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(candidate).collect()
    }

    /// The policy view of the certificates (privca's or external) with these fingerprints, as
    /// they are now, for the messages rendered when they are sent.
    pub async fn policy_views(&self, fingerprints: &[String]) -> Result<Vec<PolicyCandidate>, LedgerError> {
        let mut out = Vec::new();
        for chunk in fingerprints.chunks(VIEWS_PER_STATEMENT) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let list = list.join(", ");
            let sql = format!(
                "SELECT fingerprint_sha256 AS fingerprint, serial, subject, sans, issuer_id AS issuer, not_after, owner, \
                 tier, renew_early_at, superseded_by AS successor, superseded_by AS recorded_successor, \
                 CAST(0 AS BIGINT) AS served, CAST(NULL AS BIGINT) AS muted_until, CAST(0 AS BIGINT) AS external \
                 FROM certificates WHERE fingerprint_sha256 IN ({list}) UNION ALL \
                 SELECT fingerprint_sha256, serial, subject, sans, issuer, not_after, owner, tier, \
                 CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(0 AS BIGINT), CAST(NULL AS BIGINT), \
                 CAST(1 AS BIGINT) FROM external_certificates WHERE fingerprint_sha256 IN ({list})"
            );
            let values = chunk.iter().map(Value::from).collect();
            // Built from placeholders only; every value is bound.
            let rows = Statement::built(sql, values).query().fetch_all(&mut *self.conn().await?).await?;
            for r in &rows {
                out.push(candidate(r)?);
            }
        }
        Ok(out)
    }

    /// Records decisions in one unit of work: their outbox rows (a row whose `dedup_key` exists
    /// is left as it is), each certificate's next look, and the successors that changed. Rows
    /// go in multi-row statements (a statement per row would dominate on PostgreSQL).
    pub async fn record_decisions(&self, decisions: &[Decision]) -> Result<(), LedgerError> {
        let t = now();
        let messages: Vec<&NewMessage> = decisions.iter().flat_map(|d| &d.messages).collect();
        let mut unit = match self.dialect {
            super::Dialect::Postgres => decisions_as_json(decisions, &messages, t)?,
            super::Dialect::Sqlite => decisions_as_rows(decisions, &messages, t),
        };
        for d in decisions.iter().filter(|d| d.successor_changed && !d.external) {
            unit.push(Statement::new(
                "UPDATE certificates SET superseded_by = $1 WHERE fingerprint_sha256 = $2",
                vec![d.superseded_by.clone().into(), (&d.fingerprint).into()],
            ));
        }
        self.run_unit(&unit).await
    }

    /// Runs `unit` as one transaction (on SQLite on the direct writer).
    pub(super) async fn run_unit(&self, unit: &[Statement]) -> Result<(), LedgerError> {
        if unit.is_empty() {
            return Ok(());
        }
        if let Some(kept) = self.sqlite() {
            return kept.run_direct(unit).await;
        }
        let mut tx = self.begin().await?;
        for s in unit {
            s.execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Acknowledges (`ack`) or mutes (`mute`) the certificate `fingerprint` until `until`: no
    /// expiry notice or escalation is sent for it meanwhile. With its audit row.
    pub async fn mute(
        &self,
        fingerprint: &str,
        kind: &str,
        until: i64,
        reason: &str,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let actor = event.actor.clone();
        sqlx::query(
            "INSERT INTO clm_mutes (fingerprint, kind, until_at, reason, by_actor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (fingerprint) DO UPDATE SET kind = $2, until_at = $3, \
             reason = $4, by_actor = $5, created_at = $6",
        )
        .bind(fingerprint)
        .bind(kind)
        .bind(until)
        .bind(reason)
        .bind(actor)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` messages due at `at` for delivery: they become `sending` until
    /// `lease_until` (a sender that dies leaves them to be claimed again after it).
    pub async fn claim_outbox(&self, at: i64, lease_until: i64, limit: i64) -> Result<Vec<OutboxMessage>, LedgerError> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(concat!(
            "UPDATE clm_outbox SET state = 'sending', next_attempt_at = $1 WHERE id IN (SELECT id FROM clm_outbox \
             WHERE state IN ('pending', 'sending') AND next_attempt_at <= $2 ORDER BY id LIMIT $3) RETURNING ",
            outbox_columns!()
        ))
        .bind(lease_until)
        .bind(at)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out = rows.iter().map(outbox_message).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    /// Marks a claimed message delivered.
    pub async fn outbox_sent(&self, id: i64) -> Result<(), LedgerError> {
        let mut tx = self.begin_single().await?;
        sqlx::query("UPDATE clm_outbox SET state = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2 AND state = 'sending'")
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Ok(tx.commit().await?)
    }

    /// Records a failed delivery: retried at `retry_at`, or dead-lettered with `None`.
    pub async fn outbox_failed(&self, id: i64, error: &str, retry_at: Option<i64>) -> Result<(), LedgerError> {
        let mut tx = self.begin_single().await?;
        sqlx::query(
            "UPDATE clm_outbox SET state = $1, attempts = attempts + 1, last_error = $2, next_attempt_at = $3 \
             WHERE id = $4 AND state = 'sending'",
        )
        .bind(if retry_at.is_some() { "pending" } else { "dead" })
        .bind(error)
        .bind(retry_at.unwrap_or_else(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }

    /// Outbox messages, newest first, optionally only those in `state`.
    pub async fn outbox(&self, state: Option<&str>, limit: i64) -> Result<Vec<OutboxMessage>, LedgerError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM clm_outbox WHERE ($1 IS NULL OR state = $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(state.map(str::to_owned))
        .bind(state.unwrap_or_default())
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(outbox_message).collect()
    }

    /// Puts dead-lettered messages (one by id, or all) back in the queue with fresh attempts,
    /// with an audit row; returns how many.
    pub async fn outbox_retry(&self, id: Option<i64>, event: &AuditEvent) -> Result<u64, LedgerError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE clm_outbox SET state = 'pending', attempts = 0, next_attempt_at = $1 \
             WHERE state = 'dead' AND ($2 IS NULL OR id = $3)",
        )
        .bind(now())
        .bind(id)
        .bind(id.unwrap_or_default())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let mut event = event.clone();
        event.detail["requeued"] = serde_json::json!(done);
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Outbox counts by channel and state (for metrics).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, String, i64)>, LedgerError> {
        let rows = sqlx::query("SELECT channel, state, COUNT(*) AS n FROM clm_outbox GROUP BY channel, state")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("channel")?, r.try_get("state")?, r.try_get("n")?))).collect()
    }
}

/// An audit row the CLM turns into notifications.
#[derive(Debug, Clone)]
pub struct AuditNotice {
    /// Row id (the watermark).
    pub id: i64,
    /// Event name (`committed`, `revoked`, `approval-requested`).
    pub event: String,
    /// Certificate serial, when the event is about one.
    pub serial: Option<String>,
    /// The row's detail.
    pub detail: serde_json::Value,
}

impl Ledger {
    /// A CLM state value (`None` until first set).
    pub async fn clm_state(&self, name: &str) -> Result<Option<i64>, LedgerError> {
        let row = sqlx::query("SELECT value FROM clm_state WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// The highest audit row id (0 for none).
    pub async fn last_audit_id(&self) -> Result<i64, LedgerError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM audit_events")
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Up to `limit` audit rows after `after` whose event is `committed`, `revoked` or
    /// `approval-requested`, oldest first.
    pub async fn audit_notices(&self, after: i64, limit: i64) -> Result<Vec<AuditNotice>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, event, serial, detail FROM audit_events WHERE id > $1 \
             AND event IN ('committed', 'revoked', 'approval-requested', 'approval-denied') ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(AuditNotice {
                    id: r.try_get("id")?,
                    event: r.try_get("event")?,
                    serial: r.try_get("serial")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    /// The live certificate a request for `sans` would have replaced: the newest valid,
    /// unexpired one at `at` with exactly these names (and of `owner`, when given).
    pub async fn replaced_by_request(
        &self,
        sans: &[String],
        owner: Option<&str>,
        at: i64,
    ) -> Result<Option<String>, LedgerError> {
        let sans = serde_json::to_string(sans).map_err(|e| LedgerError::Corrupt(format!("sans: {e}")))?;
        let row = sqlx::query(
            "SELECT serial FROM certificates WHERE sans = $1 AND status = 'valid' AND not_after > $2 \
             AND ($3 IS NULL OR owner = $4) ORDER BY not_before DESC, serial DESC LIMIT 1",
        )
        .bind(sans)
        .bind(at)
        .bind(owner.map(str::to_owned))
        .bind(owner.unwrap_or_default().to_owned())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|r| r.try_get("serial")).transpose().map_err(Into::into)
    }

    /// Queues `messages` and moves the CLM state `name` to `value`, in one unit of work.
    pub async fn queue_messages_at(&self, messages: &[NewMessage], name: &str, value: i64) -> Result<(), LedgerError> {
        let t = now();
        let mut unit: Vec<Statement> = messages.iter().map(|m| insert_message(m, t)).collect();
        unit.push(Statement::new(
            "INSERT INTO clm_state (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
            vec![name.into(), value.into()],
        ));
        self.run_unit(&unit).await
    }
}
