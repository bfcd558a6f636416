//! The ledger's side of `privca backup` and `privca restore`: an online SQLite snapshot, the
//! high-water marks a backup records (audit position, CRL numbers), and what a restore writes
//! back (CRL number floors, the serials issued after the snapshot, never to be reused).

use sqlx::Row;

use super::{audit, now, Ledger, LedgerError};
use crate::audit::AuditEvent;

/// What a snapshot holds, read from it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct HighWater {
    /// Largest audit row id.
    pub audit_id: i64,
    /// Audit chain head: last sealed position.
    pub audit_seq: i64,
    /// Its hash.
    pub audit_hash: String,
    /// Last cRLNumber reserved, per CA.
    pub crl_numbers: Vec<(String, i64)>,
    /// Certificates.
    pub certificates: i64,
}

/// Serials of `serials` that the SQLite snapshot `file` holds, as a certificate or a
/// reservation. The file is opened read-only and immutable, so reading a backup never changes it.
pub fn sqlite_snapshot_holds(
    file: &std::path::Path,
    serials: &std::collections::BTreeSet<String>,
) -> Result<std::collections::BTreeSet<String>, LedgerError> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // An SQLite URI decodes %HH in its path and ends the path at `?` or `#`.
    const IN_URI_PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%').add(b'?').add(b'#');
    let path = percent_encoding::utf8_percent_encode(&file.to_string_lossy(), IN_URI_PATH).to_string();
    let uri = format!("file:{path}?immutable=1");
    let conn = rusqlite::Connection::open_with_flags(uri, flags).map_err(super::direct::from_sqlite)?;
    let mut query = conn
        .prepare(
            "SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ?1) \
             OR EXISTS (SELECT 1 FROM reservations WHERE serial = ?1)",
        )
        .map_err(super::direct::from_sqlite)?;
    let mut found = std::collections::BTreeSet::new();
    for s in serials {
        if query.query_row([s], |r| r.get::<_, bool>(0)).map_err(super::direct::from_sqlite)? {
            found.insert(s.clone());
        }
    }
    Ok(found)
}

impl Ledger {
    /// Writes a consistent copy of a SQLite ledger to `path` (`VACUUM INTO`: online, one read
    /// transaction). `Conflict` on PostgreSQL (use `pg_dump`).
    pub async fn snapshot_sqlite(&self, path: &str) -> Result<(), LedgerError> {
        if self.dialect() != super::Dialect::Sqlite {
            return Err(LedgerError::Conflict("VACUUM INTO is SQLite only".into()));
        }
        sqlx::query("VACUUM INTO $1").bind(path).execute(&mut *self.conn().await?).await?;
        Ok(())
    }

    /// The high-water marks of this ledger.
    pub async fn high_water(&self) -> Result<HighWater, LedgerError> {
        let (audit_seq, audit_hash) = self.audit_head().await?;
        let rows = sqlx::query("SELECT issuer_id, last_number FROM crl_numbers ORDER BY issuer_id")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let crl_numbers = rows
            .iter()
            .map(|r| Ok((r.try_get("issuer_id")?, r.try_get("last_number")?)))
            .collect::<Result<_, LedgerError>>()?;
        Ok(HighWater {
            audit_id: self.last_audit_id().await?,
            audit_seq,
            audit_hash,
            crl_numbers,
            certificates: self.count_certificates().await?,
        })
    }

    /// Raises CA `issuer_id`'s last cRLNumber to at least `number` (never lowers it).
    pub async fn raise_crl_number(&self, issuer_id: &str, number: i64) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO crl_numbers (issuer_id, last_number) VALUES ($1, $2) ON CONFLICT (issuer_id) DO UPDATE SET \
             last_number = CASE WHEN crl_numbers.last_number < excluded.last_number THEN excluded.last_number \
             ELSE crl_numbers.last_number END",
        )
        .bind(issuer_id)
        .bind(number)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Records serials issued after a restored snapshot as aborted reservations (so they are
    /// never issued again), `(serial, issuer_id, profile, requester)`, with one audit row.
    pub async fn record_lost_serials(
        &self,
        serials: &[(String, String, String, String)],
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let t = now();
        for (serial, issuer, profile, requester) in serials {
            sqlx::query(
                "INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, failure, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, '', 'aborted', 'issued after the restored snapshot', $5, $5) ON CONFLICT (serial) DO NOTHING",
            )
            .bind(serial)
            .bind(issuer)
            .bind(profile)
            .bind(requester)
            .bind(t)
            .execute(&mut *tx)
            .await?;
        }
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }
}
