//! Units of work of deployment verification (`clm::deploy`): which endpoints to check after a
//! renewal, the successor of a certificate, and the check results with the owner's notices
//! (written in one unit, so that a failure is told exactly once per key).

use serde::Serialize;
use sqlx::Row;

use super::{
    clm::insert_message,
    now,
    statement::{Statement, Value},
    Ledger, LedgerError, NewMessage,
};

/// The valid successor of certificate `c` (columns of `certificates c`): the newest valid
/// certificate renewing it (renewal link), else the newest valid one of the same owner and
/// names issued later. The policy job's rule, newest first.
macro_rules! successor_of {
    () => {
        "COALESCE((SELECT s.serial FROM certificates s WHERE s.renews_serial = c.serial AND s.status = 'valid' \
         ORDER BY s.not_before DESC, s.serial DESC LIMIT 1), \
         (SELECT s.serial FROM certificates s WHERE s.sans = c.sans AND s.owner = c.owner AND s.status = 'valid' \
         AND (s.not_before > c.not_before OR (s.not_before = c.not_before AND s.serial > c.serial)) \
         ORDER BY s.not_before DESC, s.serial DESC LIMIT 1))"
    };
}

/// An endpoint that served one of privca's certificates at its last scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentTarget {
    /// Host name or address scanned.
    pub host: String,
    /// Port.
    pub port: u16,
    /// SNI name ("" for none).
    pub sni: String,
    /// Serial of the certificate served there at the last scan.
    pub served_serial: String,
    /// Its recorded successor (`superseded_by`), else the one the renewal rule finds.
    pub successor: Option<String>,
    /// The certificate it renewed: the renewal link, else the newest earlier one of the same
    /// owner and names.
    pub predecessor: Option<String>,
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeploymentFailure {
    /// `served-leaf`, `chain`, `name`, `ocsp` or `scan`.
    pub check: String,
    /// What was found.
    pub detail: String,
}

/// One deployment check of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentCheck {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// SHA-256 fingerprint of the successor expected at the endpoint.
    pub fingerprint: String,
    /// The successor's serial.
    pub serial: String,
    /// The predecessor's serial.
    pub predecessor_serial: String,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// SNI name ("" for none).
    pub sni: String,
    /// When the check ran, Unix seconds.
    pub checked_at: i64,
    /// Every check passed.
    pub ok: bool,
    /// The leaf served, if one was read.
    pub served_fingerprint: Option<String>,
    /// The checks that failed.
    pub failures: Vec<DeploymentFailure>,
}

impl Ledger {
    /// The endpoints serving privca's certificates at their last scan, each with the served
    /// certificate's successor and predecessor (a few rows: one per endpoint).
    pub async fn deployment_targets(&self) -> Result<Vec<DeploymentTarget>, LedgerError> {
        let rows = sqlx::query(concat!(
            "SELECT e.host, e.port, e.sni, c.serial, COALESCE(c.superseded_by, ",
            successor_of!(),
            ") AS successor, COALESCE(c.renews_serial, \
             (SELECT p.serial FROM certificates p WHERE p.sans = c.sans AND p.owner = c.owner \
              AND p.not_before < c.not_before ORDER BY p.not_before DESC LIMIT 1)) AS predecessor \
             FROM endpoints e JOIN certificates c ON c.fingerprint_sha256 = e.fingerprint_sha256 \
             ORDER BY e.host, e.port, e.sni"
        ))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let port: i64 = r.try_get("port")?;
                Ok(DeploymentTarget {
                    host: r.try_get("host")?,
                    port: u16::try_from(port).map_err(|_| LedgerError::Corrupt(format!("endpoint port {port}")))?,
                    sni: r.try_get("sni")?,
                    served_serial: r.try_get("serial")?,
                    successor: r.try_get("successor")?,
                    predecessor: r.try_get("predecessor")?,
                })
            })
            .collect()
    }

    /// The valid successor of the certificate `serial` (renewal rule), if any.
    pub async fn successor(&self, serial: &str) -> Result<Option<String>, LedgerError> {
        let row =
            sqlx::query(concat!("SELECT ", successor_of!(), " AS successor FROM certificates c WHERE c.serial = $1"))
                .bind(serial)
                .fetch_optional(&mut *self.conn().await?)
                .await?;
        Ok(row.map(|r| r.try_get("successor")).transpose()?.flatten())
    }

    /// Whether a check of `fingerprint` at the endpoint passed already.
    pub async fn deployment_verified(
        &self,
        fingerprint: &str,
        host: &str,
        port: u16,
        sni: &str,
    ) -> Result<bool, LedgerError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM deployment_checks WHERE fingerprint = $1 AND host = $2 AND port = $3 \
             AND sni = $4 AND ok = 1",
        )
        .bind(fingerprint)
        .bind(host)
        .bind(i64::from(port))
        .bind(sni)
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Stores `check` and queues `messages` (a key already queued is left as it is) in one
    /// unit of work.
    pub async fn record_deployment_check(
        &self,
        check: &DeploymentCheck,
        messages: &[NewMessage],
    ) -> Result<(), LedgerError> {
        let t = now();
        let failures = serde_json::to_string(&check.failures).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        let mut unit = vec![Statement::new(
            "INSERT INTO deployment_checks (fingerprint, serial, predecessor_serial, host, port, sni, checked_at, ok, \
             served_fingerprint, failures) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            vec![
                (&check.fingerprint).into(),
                (&check.serial).into(),
                (&check.predecessor_serial).into(),
                (&check.host).into(),
                i64::from(check.port).into(),
                (&check.sni).into(),
                check.checked_at.into(),
                i64::from(check.ok).into(),
                check.served_fingerprint.clone().into(),
                Value::from(failures),
            ],
        )];
        unit.extend(messages.iter().map(|m| insert_message(m, t)));
        self.run_unit(&unit).await
    }

    /// The latest `limit` checks, newest first, optionally of one successor (fingerprint).
    pub async fn deployment_checks(
        &self,
        fingerprint: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeploymentCheck>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, fingerprint, serial, predecessor_serial, host, port, sni, checked_at, ok, served_fingerprint, \
             failures FROM deployment_checks WHERE ($1 IS NULL OR fingerprint = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(fingerprint.map(str::to_owned))
        .bind(fingerprint.unwrap_or_default())
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let port: i64 = r.try_get("port")?;
                let failures: String = r.try_get("failures")?;
                Ok(DeploymentCheck {
                    id: r.try_get("id")?,
                    fingerprint: r.try_get("fingerprint")?,
                    serial: r.try_get("serial")?,
                    predecessor_serial: r.try_get("predecessor_serial")?,
                    host: r.try_get("host")?,
                    port: u16::try_from(port).map_err(|_| LedgerError::Corrupt(format!("port {port}")))?,
                    sni: r.try_get("sni")?,
                    checked_at: r.try_get("checked_at")?,
                    ok: r.try_get::<i64, _>("ok")? != 0,
                    served_fingerprint: r.try_get("served_fingerprint")?,
                    failures: serde_json::from_str(&failures)
                        .map_err(|e| LedgerError::Corrupt(format!("failures: {e}")))?,
                })
            })
            .collect()
    }
}

impl Ledger {
    /// Up to `limit` valid, superseded certificates of `tier` that no endpoint serves at its
    /// last scan and whose successor passed a deployment check where they were served, at or
    /// before `verified_before`.
    pub async fn superseded_and_replaced(
        &self,
        tier: &str,
        verified_before: i64,
        limit: i64,
    ) -> Result<Vec<String>, LedgerError> {
        let rows = sqlx::query(
            "SELECT c.serial FROM certificates c WHERE c.status = 'valid' AND c.superseded_by IS NOT NULL \
             AND c.tier = $1 \
             AND EXISTS (SELECT 1 FROM deployment_checks d WHERE d.predecessor_serial = c.serial AND d.ok = 1 \
               AND d.checked_at <= $2) \
             AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.fingerprint_sha256 = c.fingerprint_sha256) \
             ORDER BY c.serial LIMIT $3",
        )
        .bind(tier)
        .bind(verified_before)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("serial")?)).collect()
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    async fn exec(ledger: &Ledger, sql: &str) {
        let mut tx = ledger.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn cert(ledger: &Ledger, serial: &str, sans: &str, not_before: i64) {
        exec(
            ledger,
            &format!(
                "INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, created_at, \
                 updated_at) VALUES ('{serial}', 'i', 'p', 'cli:t', 'tbs{serial}', 'committed', 1, 1)"
            ),
        )
        .await;
        let mut tx = ledger.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO certificates (serial, issuer_id, subject, sans, fingerprint_sha256, not_before, not_after, \
             profile, requester, owner, tier, status, der, created_at) \
             VALUES ($1, 'i', 'CN=x', $2, $3, $4, 1000000, 'p', 'cli:t', 'web', 'internal', 'valid', $5, 1)",
        )
        .bind(serial)
        .bind(sans)
        .bind(format!("f{serial}"))
        .bind(not_before)
        .bind(vec![0x30u8, 0x00])
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    async fn endpoint(ledger: &Ledger, port: u16, sni: &str, fingerprint: &str) {
        exec(
            ledger,
            &format!(
                "INSERT INTO endpoints (host, port, sni, fingerprint_sha256, chain, first_seen, last_seen) \
                 VALUES ('h', {port}, '{sni}', '{fingerprint}', '[]', 1, 1)"
            ),
        )
        .await;
    }

    fn check(ok: bool) -> DeploymentCheck {
        DeploymentCheck {
            id: 0,
            fingerprint: "fa2".into(),
            serial: "a2".into(),
            predecessor_serial: "a1".into(),
            host: "h".into(),
            port: 1,
            sni: String::new(),
            checked_at: 5,
            ok,
            served_fingerprint: Some(if ok { "fa2" } else { "fa1" }.into()),
            failures: if ok {
                Vec::new()
            } else {
                vec![DeploymentFailure { check: "served-leaf".into(), detail: "old certificate still served".into() }]
            },
        }
    }

    fn message() -> NewMessage {
        NewMessage {
            dedup_key: "deployment-failed:fa2:h:1::1:email".into(),
            event: "deployment-failed".into(),
            fingerprint: Some("fa2".into()),
            owner: "web".into(),
            channel: "email".into(),
            recipient: "web@example.test".into(),
            subject: "s".into(),
            body: "b".into(),
            state: "pending",
            error: None,
        }
    }

    async fn battery(ledger: &Ledger) {
        cert(ledger, "a1", r#"["dns:x"]"#, 10).await;
        cert(ledger, "a2", r#"["dns:x"]"#, 20).await;
        cert(ledger, "b1", r#"["dns:y"]"#, 10).await;
        endpoint(ledger, 1, "", "fa1").await;
        endpoint(ledger, 2, "x", "fa2").await;
        endpoint(ledger, 3, "", "fb1").await;
        let t = ledger.deployment_targets().await.unwrap();
        let got: Vec<(u16, &str, Option<&str>, Option<&str>)> = t
            .iter()
            .map(|t| (t.port, t.served_serial.as_str(), t.successor.as_deref(), t.predecessor.as_deref()))
            .collect();
        assert_eq!(got, [(1, "a1", Some("a2"), None), (2, "a2", None, Some("a1")), (3, "b1", None, None)]);
        assert_eq!(ledger.successor("a1").await.unwrap().as_deref(), Some("a2"));
        assert_eq!(ledger.successor("a2").await.unwrap(), None);

        // A failure and its notice; the same notice again is not queued twice.
        ledger.record_deployment_check(&check(false), &[message()]).await.unwrap();
        ledger.record_deployment_check(&check(false), &[message()]).await.unwrap();
        assert_eq!(ledger.outbox(None, 10).await.unwrap().len(), 1);
        assert!(!ledger.deployment_verified("fa2", "h", 1, "").await.unwrap());
        ledger.record_deployment_check(&check(true), &[]).await.unwrap();
        assert!(ledger.deployment_verified("fa2", "h", 1, "").await.unwrap());
        assert!(!ledger.deployment_verified("fa2", "h", 2, "x").await.unwrap());
        let rows = ledger.deployment_checks(Some("fa2"), 10).await.unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].ok && rows[0].id > rows[1].id, "newest first");
        assert_eq!(rows[1].failures, check(false).failures);
        assert_eq!(DeploymentCheck { id: 0, ..rows[1].clone() }, check(false));
        assert!(ledger.deployment_checks(Some("other"), 10).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deployment_checks_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display());
        battery(&Ledger::connect(&url, 4).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deployment_checks_on_postgres() {
        let Some(db) = crate::ledger::test_db::TestPg::create().await else { return };
        let ledger = Ledger::connect(&db.url, 2).await.unwrap();
        battery(&ledger).await;
        ledger.close().await;
    }
}
