//! Audit rows: insertion inside other units of work, and the sealer's reads and writes.

use sqlx::{any::AnyRow, AnyConnection, Row};

use super::{
    now,
    statement::{bind_values, Statement, Value},
    AnyQuery, AuditRow, Checkpoint, Ledger, LedgerError, SealedLink,
};
use crate::audit::AuditEvent;

/// `INSERT INTO audit_events (…)` of the seven columns [`bind`] fills, without its rows.
macro_rules! audit_insert_sql {
    () => {
        "INSERT INTO audit_events (occurred_at, event, actor, serial, profile, issuer_id, detail)"
    };
}
pub(super) use audit_insert_sql;

/// Inserts `event` (unsealed) on `conn`, inside the caller's transaction.
pub(super) async fn insert(conn: &mut AnyConnection, event: &AuditEvent) -> Result<(), LedgerError> {
    insert_statement(event).execute(conn).await?;
    event.trace();
    Ok(())
}

/// The insert of `event` (unsealed) as a statement of a unit of work; the caller traces the
/// event once the unit has committed.
pub(super) fn insert_statement(event: &AuditEvent) -> Statement {
    Statement::new(concat!(audit_insert_sql!(), " VALUES ($1, $2, $3, $4, $5, $6, $7)"), values(event))
}

/// An audit row's seven values (`occurred_at` … `detail`, the time is now).
fn values(event: &AuditEvent) -> Vec<Value> {
    vec![
        now().into(),
        event.kind.as_str().into(),
        (&event.actor).into(),
        event.serial.clone().into(),
        event.profile.clone().into(),
        event.issuer_id.clone().into(),
        event.detail.to_string().into(),
    ]
}

/// Binds an audit row's seven values.
pub(super) fn bind<'q>(q: AnyQuery<'q>, event: &AuditEvent) -> AnyQuery<'q> {
    bind_values(q, values(event))
}

/// The columns [`audit_row`] reads, for `concat!` into static SQL.
macro_rules! audit_columns {
    () => {
        "id, occurred_at, event, actor, serial, profile, issuer_id, detail, seq, prev_hash, hash"
    };
}

fn audit_row(r: &AnyRow) -> Result<AuditRow, LedgerError> {
    Ok(AuditRow {
        id: r.try_get("id")?,
        occurred_at: r.try_get("occurred_at")?,
        event: r.try_get("event")?,
        actor: r.try_get("actor")?,
        serial: r.try_get("serial")?,
        profile: r.try_get("profile")?,
        issuer_id: r.try_get("issuer_id")?,
        detail: r.try_get("detail")?,
        seq: r.try_get("seq")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// The conflict when a row of a sealing batch was sealed meanwhile (by another sealer).
const ALREADY_SEALED: &str = "an audit row in the batch was already sealed";

/// Links written by one PostgreSQL statement (four parameters each, well under the parameter
/// limit).
const LINKS_PER_STATEMENT: usize = 250;

/// `UPDATE … FROM (VALUES …)` linking `n` unsealed rows at once: on PostgreSQL one round trip
/// per batch instead of one per row (VALUES columns are named `columnN`).
fn link_statement(n: usize) -> String {
    let values: Vec<String> =
        (0..n).map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4)).collect();
    format!(
        "UPDATE audit_events SET seq = v.column2, prev_hash = v.column3, hash = v.column4 FROM (VALUES {}) AS v \
         WHERE audit_events.id = v.column1 AND audit_events.seq IS NULL",
        values.join(", ")
    )
}

impl Ledger {
    /// Records a standalone event (e.g. a refused request) in its own transaction.
    pub async fn record_event(&self, event: &AuditEvent) -> Result<(), LedgerError> {
        let mut tx = self.begin_single().await?;
        insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` rows not yet linked into the chain, oldest first.
    pub async fn unsealed_audit(&self, limit: i64) -> Result<Vec<AuditRow>, LedgerError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE seq IS NULL ORDER BY id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// Number of unsealed rows.
    pub async fn unsealed_count(&self) -> Result<i64, LedgerError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE seq IS NULL")
            .fetch_one(&mut *self.conn().await?)
            .await?
            .try_get("n")?)
    }

    /// Up to `limit` sealed rows with `seq > after`, in chain order.
    pub async fn sealed_audit(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, LedgerError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// Up to `limit` rows (sealed or not) with `id < before` (`None`: from the newest), newest
    /// first, optionally only of `event` and/or `serial`: the admin API's audit pages.
    pub async fn audit_page(
        &self,
        before: Option<i64>,
        event: Option<&str>,
        serial: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, LedgerError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events WHERE id < $1 AND ($2 = '' OR event = $2) AND ($3 = '' OR serial = $3) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(event.unwrap_or(""))
        .bind(serial.unwrap_or(""))
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// Up to `limit` rows (sealed or not) with an id above `after`, oldest first.
    pub async fn audit_after_id(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, LedgerError> {
        let rows =
            sqlx::query(concat!("SELECT ", audit_columns!(), " FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2"))
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *self.conn().await?)
                .await?;
        rows.iter().map(audit_row).collect()
    }

    /// The chain head: last sealed position and its hash.
    pub async fn audit_head(&self) -> Result<(i64, String), LedgerError> {
        let row =
            sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *self.conn().await?).await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    /// Writes the links and the checkpoint and moves the head, in one transaction, if the head
    /// is still at `expected_head` (otherwise another sealer won: `Conflict`).
    ///
    /// On SQLite the unit runs on the direct writer, one cached `UPDATE` per link: a few
    /// milliseconds for a full batch, where the batched statement through sqlx held the write
    /// turn (and so every issuance) for 50–140 ms under load.
    pub async fn seal_audit(
        &self,
        expected_head: i64,
        links: &[SealedLink],
        checkpoint: &Checkpoint,
    ) -> Result<(), LedgerError> {
        let move_head = Statement::new(
            "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3",
            vec![checkpoint.seq.into(), (&checkpoint.head_hash).into(), expected_head.into()],
        )
        .one_row("audit head moved".into());
        let add_checkpoint = Statement::new(
            "INSERT INTO audit_checkpoints (seq, head_hash, signed_at, key_label, signature) VALUES ($1, $2, $3, $4, $5)",
            vec![
                checkpoint.seq.into(),
                (&checkpoint.head_hash).into(),
                checkpoint.signed_at.into(),
                (&checkpoint.key_label).into(),
                checkpoint.signature.as_slice().into(),
            ],
        );
        if let Some(kept) = self.sqlite() {
            let mut unit = Vec::with_capacity(links.len() + 2);
            unit.push(move_head);
            unit.extend(links.iter().map(|l| {
                Statement::new(
                    "UPDATE audit_events SET seq = $1, prev_hash = $2, hash = $3 WHERE id = $4 AND seq IS NULL",
                    vec![l.seq.into(), (&l.prev_hash).into(), (&l.hash).into(), l.id.into()],
                )
                .one_row(ALREADY_SEALED.into())
            }));
            unit.push(add_checkpoint);
            return kept.run_direct(&unit).await;
        }
        let mut tx = self.begin().await?;
        move_head.execute(&mut tx).await?;
        for chunk in links.chunks(LINKS_PER_STATEMENT) {
            // The statement holds placeholders only; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(link_statement(chunk.len()))).persistent(false);
            for link in chunk {
                query = query.bind(link.id).bind(link.seq).bind(&link.prev_hash).bind(&link.hash);
            }
            let done = query.execute(&mut *tx).await?;
            if done.rows_affected() != chunk.len() as u64 {
                return Err(LedgerError::Conflict(ALREADY_SEALED.into()));
            }
        }
        add_checkpoint.execute(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every checkpoint, in chain order.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, LedgerError> {
        let rows =
            sqlx::query("SELECT seq, head_hash, signed_at, key_label, signature FROM audit_checkpoints ORDER BY seq")
                .fetch_all(&mut *self.conn().await?)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Checkpoint {
                    seq: r.try_get("seq")?,
                    head_hash: r.try_get("head_hash")?,
                    signed_at: r.try_get("signed_at")?,
                    key_label: r.try_get("key_label")?,
                    signature: r.try_get("signature")?,
                })
            })
            .collect()
    }

    /// Serials of certificates that have no `committed` audit row.
    pub async fn certificates_without_commit_audit(&self) -> Result<Vec<String>, LedgerError> {
        let rows = sqlx::query(
            "SELECT c.serial AS serial FROM certificates c WHERE NOT EXISTS \
             (SELECT 1 FROM audit_events a WHERE a.serial = c.serial AND a.event = 'committed') ORDER BY c.serial",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("serial")?)).collect()
    }
}
