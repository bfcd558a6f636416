//! Units of work on the certificates privca did not issue (`external_certificates`, filled by
//! imports and discovery scans) and on the endpoints scans saw serving certificates
//! (`endpoints`). A certificate whose fingerprint is one of privca's own (`certificates`)
//! never gets an external row: the endpoint points at the issued certificate instead.
//!
//! An audit row is written with every change to the inventory: a new external certificate, a
//! new endpoint, or an endpoint serving another leaf. A rescan that finds the same leaf only
//! moves `last_seen` and the endpoint's findings, and is not audited.

use serde::Serialize;
use sqlx::{any::AnyRow, AnyConnection, Row};

use super::{
    audit, now,
    statement::{bind_values, Statement, Value},
    Ledger, LedgerError,
};
use crate::audit::AuditEvent;

/// Where an external certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalSource {
    /// Found by a discovery scan.
    Discovery,
    /// Imported from a file.
    Import,
}

impl ExternalSource {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Import => "import",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "discovery" => Some(Self::Discovery),
            "import" => Some(Self::Import),
            _ => None,
        }
    }
}

/// A certificate privca did not issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalCertificate {
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint_sha256: String,
    /// Import or discovery.
    pub source: ExternalSource,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// `dns:…`, `ip:…`, `email:…`, `uri:…`.
    pub sans: Vec<String>,
    /// `rsa-2048`, `ec-p256`, …
    pub key_type: String,
    /// Signature algorithm name.
    pub signature_algorithm: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// CLM owner (`unowned` until claimed).
    pub owner: String,
    /// Tier.
    pub tier: String,
    /// DER.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// What one scan saw at an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointScan {
    /// Host name or address as scanned.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// SNI name sent ("" for none).
    pub sni: String,
    /// The served chain's fingerprints, leaf first.
    pub chain: Vec<String>,
    /// Negotiated protocol version.
    pub tls_version: Option<String>,
    /// Finding names.
    pub findings: Vec<String>,
}

/// How an endpoint row changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "change", content = "previous")]
pub enum EndpointChange {
    /// First time this endpoint was seen.
    New,
    /// Same leaf as the last scan.
    Unchanged,
    /// Another leaf than at the last scan (the previous fingerprint).
    LeafChanged(String),
}

/// What [`Ledger::record_endpoint`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointRecorded {
    /// The endpoint row's change.
    pub endpoint: EndpointChange,
    /// The serial of privca's certificate (`ca:<id>` for a CA certificate), when the leaf is
    /// privca's own.
    pub own_serial: Option<String>,
    /// An external row was created for the leaf.
    pub new_external: bool,
}

/// What [`Ledger::import_certificates`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    /// External rows created.
    pub new: usize,
    /// Certificates already in the inventory as external ones.
    pub known: usize,
    /// Serials of certificates privca issued, `ca:<id>` for its CA certificates (no row
    /// written).
    pub own: Vec<String>,
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn json_list(r: &AnyRow, column: &str) -> Result<Vec<String>, LedgerError> {
    let s: String = r.try_get(column)?;
    serde_json::from_str(&s).map_err(|e| LedgerError::Corrupt(format!("{column}: {e}")))
}

/// What a unit reads before it writes, in one statement (`$1` fingerprint, `$2` DER, `$3`-`$5`
/// the endpoint's host, port and SNI name): privca's own certificate with this fingerprint and
/// DER (an issued certificate's serial, or `ca:<id>` for one of its CA certificates), whether
/// an external row exists, and the leaf the endpoint served at its last scan.
const FACTS: &str = "SELECT (SELECT serial FROM certificates WHERE fingerprint_sha256 = $1) AS own_serial, \
     (SELECT 'ca:' || id FROM ca_certificates WHERE der = $2) AS own_ca, \
     (SELECT fingerprint_sha256 FROM external_certificates WHERE fingerprint_sha256 = $1) AS known, \
     (SELECT fingerprint_sha256 FROM endpoints WHERE host = $3 AND port = $4 AND sni = $5) AS previous";

/// The answer to [`FACTS`].
#[derive(Debug, Default)]
struct Facts {
    own: Option<String>,
    known: bool,
    previous: Option<String>,
}

fn facts_values(fingerprint: &str, der: &[u8], endpoint: (&str, u16, &str)) -> Vec<Value> {
    vec![fingerprint.into(), der.into(), endpoint.0.into(), i64::from(endpoint.1).into(), endpoint.2.into()]
}

/// [`FACTS`] inside the caller's transaction (sqlx).
async fn facts(
    conn: &mut AnyConnection,
    fingerprint: &str,
    der: &[u8],
    endpoint: (&str, u16, &str),
) -> Result<Facts, LedgerError> {
    let row = bind_values(sqlx::query(FACTS), facts_values(fingerprint, der, endpoint)).fetch_one(conn).await?;
    let own_serial: Option<String> = row.try_get("own_serial")?;
    let own_ca: Option<String> = row.try_get("own_ca")?;
    let known: Option<String> = row.try_get("known")?;
    Ok(Facts { own: own_serial.or(own_ca), known: known.is_some(), previous: row.try_get("previous")? })
}

/// The insert of `c` (`created_at` = `t`); a row already there is left alone.
fn insert_external(c: &ExternalCertificate, t: i64) -> Statement {
    Statement::new(
        "INSERT INTO external_certificates (fingerprint_sha256, source, subject, issuer, serial, sans, key_type, \
         signature_algorithm, not_before, not_after, owner, tier, der, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (fingerprint_sha256) DO NOTHING",
        vec![
            (&c.fingerprint_sha256).into(),
            c.source.as_str().into(),
            (&c.subject).into(),
            (&c.issuer).into(),
            (&c.serial).into(),
            json(&c.sans).into(),
            (&c.key_type).into(),
            (&c.signature_algorithm).into(),
            c.not_before.into(),
            c.not_after.into(),
            (&c.owner).into(),
            (&c.tier).into(),
            c.der.as_slice().into(),
            t.into(),
        ],
    )
}

/// The upsert of the endpoint row (`first_seen` and `deployed_at` restart with another leaf).
fn upsert_endpoint(scan: &EndpointScan, leaf: &str, t: i64) -> Statement {
    Statement::new(
        "INSERT INTO endpoints (host, port, sni, fingerprint_sha256, chain, tls_version, findings, first_seen, \
         last_seen, deployed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8) \
         ON CONFLICT (host, port, sni) DO UPDATE SET \
         first_seen = CASE WHEN endpoints.fingerprint_sha256 = excluded.fingerprint_sha256 \
           THEN endpoints.first_seen ELSE excluded.first_seen END, \
         deployed_at = CASE WHEN endpoints.fingerprint_sha256 = excluded.fingerprint_sha256 \
           THEN endpoints.deployed_at ELSE excluded.deployed_at END, \
         fingerprint_sha256 = excluded.fingerprint_sha256, chain = excluded.chain, \
         tls_version = excluded.tls_version, findings = excluded.findings, last_seen = excluded.last_seen",
        vec![
            (&scan.host).into(),
            i64::from(scan.port).into(),
            (&scan.sni).into(),
            leaf.into(),
            json(&scan.chain).into(),
            scan.tls_version.clone().into(),
            json(&scan.findings).into(),
            t.into(),
        ],
    )
}

/// An endpoint unit's outcome, its statements after the external certificate's insert (the
/// endpoint row, and the audit row when the inventory changed) and its audit event.
fn plan_endpoint(
    scan: &EndpointScan,
    leaf: &ExternalCertificate,
    facts: Facts,
    new_external: bool,
    event: &AuditEvent,
    t: i64,
) -> (EndpointRecorded, Vec<Statement>, Option<AuditEvent>) {
    let endpoint = match facts.previous {
        None => EndpointChange::New,
        Some(p) if p == leaf.fingerprint_sha256 => EndpointChange::Unchanged,
        Some(p) => EndpointChange::LeafChanged(p),
    };
    let recorded = EndpointRecorded { endpoint, own_serial: facts.own, new_external };
    let mut unit = vec![upsert_endpoint(scan, &leaf.fingerprint_sha256, t)];
    let audit = (recorded.new_external || recorded.endpoint != EndpointChange::Unchanged).then(|| {
        let mut event = event.clone();
        event.serial = recorded.own_serial.clone();
        event.detail["outcome"] = serde_json::to_value(&recorded).unwrap_or_default();
        unit.push(audit::insert_statement(&event));
        event
    });
    (recorded, unit, audit)
}

impl Ledger {
    /// Records one endpoint's scan in one transaction: the leaf `leaf` as an external
    /// certificate unless privca issued it (or it is already inventoried), and the endpoint
    /// row. `first_seen` and `deployed_at` restart when the served leaf changes. `event` (with
    /// the outcome added to its detail) is written only when the inventory changed. On SQLite
    /// the unit runs on the direct connections (`direct`), its read under the write turn, so
    /// that a scan's many small units do not queue behind sqlx's thread.
    pub async fn record_endpoint(
        &self,
        scan: &EndpointScan,
        leaf: &ExternalCertificate,
        event: &AuditEvent,
    ) -> Result<EndpointRecorded, LedgerError> {
        let t = now();
        let endpoint = (scan.host.as_str(), scan.port, scan.sni.as_str());
        if let Some(kept) = self.sqlite() {
            let values = facts_values(&leaf.fingerprint_sha256, &leaf.der, endpoint);
            let (recorded, audit) = kept
                .run_direct_planned(|direct| {
                    let facts = direct
                        .read_row(FACTS, &values, |r| {
                            let own: Option<String> = r.get(0)?;
                            let own_ca: Option<String> = r.get(1)?;
                            let known: Option<String> = r.get(2)?;
                            Ok(Facts { own: own.or(own_ca), known: known.is_some(), previous: r.get(3)? })
                        })?
                        .unwrap_or_default();
                    // Under the write turn, what was read is what the unit writes over.
                    let new_external = facts.own.is_none() && !facts.known;
                    let (recorded, rest, audit) = plan_endpoint(scan, leaf, facts, new_external, event, t);
                    let mut unit = Vec::with_capacity(rest.len() + 1);
                    if new_external {
                        unit.push(insert_external(leaf, t));
                    }
                    unit.extend(rest);
                    Ok(((recorded, audit), unit))
                })
                .await?;
            if let Some(e) = audit {
                e.trace();
            }
            return Ok(recorded);
        }
        let mut tx = self.begin().await?;
        let facts = facts(&mut tx, &leaf.fingerprint_sha256, &leaf.der, endpoint).await?;
        // Another instance may insert the same certificate meanwhile: the insert's own count
        // says whether this unit added it.
        let mut new_external = false;
        if facts.own.is_none() && !facts.known {
            let insert = insert_external(leaf, t);
            new_external = insert.query().execute(&mut *tx).await?.rows_affected() == 1;
        }
        let (recorded, unit, audit) = plan_endpoint(scan, leaf, facts, new_external, event, t);
        for s in &unit {
            s.execute(&mut tx).await?;
        }
        tx.commit().await?;
        if let Some(e) = audit {
            e.trace();
        }
        Ok(recorded)
    }

    /// Imports the certificates of one file in one transaction: an external row for each one
    /// that is neither privca's nor already inventoried, and `event` (with the outcome added
    /// to its detail) when at least one row was written.
    pub async fn import_certificates(
        &self,
        certs: &[ExternalCertificate],
        event: &AuditEvent,
    ) -> Result<ImportOutcome, LedgerError> {
        let t = now();
        let mut tx = self.begin().await?;
        let mut outcome = ImportOutcome::default();
        let mut fingerprints = Vec::new();
        for c in certs {
            let facts = facts(&mut tx, &c.fingerprint_sha256, &c.der, ("", 0, "")).await?;
            if let Some(serial) = facts.own {
                outcome.own.push(serial);
            } else if facts.known || fingerprints.contains(&c.fingerprint_sha256) {
                outcome.known += 1;
            } else {
                insert_external(c, t).execute(&mut tx).await?;
                outcome.new += 1;
                fingerprints.push(c.fingerprint_sha256.clone());
            }
        }
        if outcome.new > 0 {
            let mut event = event.clone();
            event.detail["fingerprints"] = serde_json::json!(fingerprints);
            event.detail["outcome"] = serde_json::to_value(&outcome).unwrap_or_default();
            audit::insert(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Every CA certificate privca holds: its DER and the PEM chain above it.
    pub async fn ca_certificate_chains(&self) -> Result<Vec<(Vec<u8>, String)>, LedgerError> {
        let rows = sqlx::query("SELECT der, chain_pem FROM ca_certificates ORDER BY id")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("der")?, r.try_get("chain_pem")?))).collect()
    }

    /// One external certificate by fingerprint.
    pub async fn external_certificate(&self, fingerprint: &str) -> Result<Option<ExternalCertificate>, LedgerError> {
        let row = sqlx::query(
            "SELECT fingerprint_sha256, source, subject, issuer, serial, sans, key_type, signature_algorithm, \
             not_before, not_after, owner, tier, der FROM external_certificates WHERE fingerprint_sha256 = $1",
        )
        .bind(fingerprint)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|r| {
            let source: String = r.try_get("source")?;
            Ok(ExternalCertificate {
                fingerprint_sha256: r.try_get("fingerprint_sha256")?,
                source: ExternalSource::parse(&source)
                    .ok_or_else(|| LedgerError::Corrupt(format!("source `{source}`")))?,
                subject: r.try_get("subject")?,
                issuer: r.try_get("issuer")?,
                serial: r.try_get("serial")?,
                sans: json_list(&r, "sans")?,
                key_type: r.try_get("key_type")?,
                signature_algorithm: r.try_get("signature_algorithm")?,
                not_before: r.try_get("not_before")?,
                not_after: r.try_get("not_after")?,
                owner: r.try_get("owner")?,
                tier: r.try_get("tier")?,
                der: r.try_get("der")?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::audit::AuditKind;

    fn cert(fingerprint: &str, source: ExternalSource) -> ExternalCertificate {
        ExternalCertificate {
            fingerprint_sha256: fingerprint.into(),
            source,
            subject: "CN=www.example.test".into(),
            issuer: "CN=Other CA".into(),
            serial: "01".into(),
            sans: vec!["dns:www.example.test".into()],
            key_type: "ec-p256".into(),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            not_before: 1,
            not_after: 2,
            owner: "unowned".into(),
            tier: "internal".into(),
            der: vec![0x30, 0x00],
        }
    }

    fn scan(leaf: &str) -> EndpointScan {
        EndpointScan {
            host: "127.0.0.1".into(),
            port: 8443,
            sni: String::new(),
            chain: vec![leaf.into()],
            tls_version: Some("TLSv1.3".into()),
            findings: vec!["self-signed".into()],
        }
    }

    async fn audit_rows(ledger: &Ledger, kind: &str) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE event = $1")
            .bind(kind)
            .fetch_one(&mut *ledger.conn().await.unwrap())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    }

    async fn battery(ledger: &Ledger) {
        let event = AuditEvent::new(AuditKind::EndpointSeen, "test");
        let a = cert("aa", ExternalSource::Discovery);
        let r = ledger.record_endpoint(&scan("aa"), &a, &event).await.unwrap();
        assert_eq!(r, EndpointRecorded { endpoint: EndpointChange::New, own_serial: None, new_external: true });
        let first = ledger.endpoints_of("aa").await.unwrap().remove(0);
        assert_eq!((first.port, first.deployed_at), (8443, Some(first.first_seen)));
        assert_eq!(ledger.external_certificate("aa").await.unwrap().unwrap(), a);

        // The same leaf again: nothing but last_seen moves, and no audit row.
        let r = ledger.record_endpoint(&scan("aa"), &a, &event).await.unwrap();
        assert_eq!(r.endpoint, EndpointChange::Unchanged);
        assert!(!r.new_external);
        assert_eq!(audit_rows(ledger, "endpoint-seen").await, 1);

        // Another leaf: first_seen and deployed_at restart.
        let mut tx = ledger.begin().await.unwrap();
        sqlx::query("UPDATE endpoints SET first_seen = 5, deployed_at = 5").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let b = cert("bb", ExternalSource::Discovery);
        let r = ledger.record_endpoint(&scan("bb"), &b, &event).await.unwrap();
        assert_eq!(r.endpoint, EndpointChange::LeafChanged("aa".into()));
        assert!(ledger.endpoints_of("aa").await.unwrap().is_empty());
        let row = ledger.endpoints_of("bb").await.unwrap().remove(0);
        assert!(row.first_seen > 5 && row.deployed_at == Some(row.first_seen));
        assert_eq!(audit_rows(ledger, "endpoint-seen").await, 2);

        // Imports: new, known, and privca's own certificate (no external row).
        let mut tx = ledger.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO reservations (serial, issuer_id, profile, requester, tbs_sha256, state, created_at, updated_at) \
             VALUES ('0a', 'i', 'p', 'cli:t', 'x', 'committed', 1, 1)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO certificates (serial, issuer_id, subject, sans, fingerprint_sha256, not_before, not_after, \
             profile, requester, owner, tier, status, der, created_at) \
             VALUES ('0a', 'i', 'CN=own', '[]', 'cc', 1, 2, 'p', 'cli:t', 'o', 'internal', 'valid', $1, 1)",
        )
        .bind(vec![0x30u8, 0x00])
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let imported = AuditEvent::new(AuditKind::InventoryImported, "test");
        let out = ledger
            .import_certificates(
                &[
                    cert("bb", ExternalSource::Import),
                    cert("dd", ExternalSource::Import),
                    cert("cc", ExternalSource::Import),
                ],
                &imported,
            )
            .await
            .unwrap();
        assert_eq!(out, ImportOutcome { new: 1, known: 1, own: vec!["0a".into()] });
        assert!(ledger.external_certificate("cc").await.unwrap().is_none());
        assert_eq!(ledger.external_certificate("dd").await.unwrap().unwrap().source, ExternalSource::Import);

        // privca's own leaf at an endpoint: no external row, the serial is reported.
        let mut own_scan = scan("cc");
        own_scan.port = 9443;
        let r = ledger.record_endpoint(&own_scan, &cert("cc", ExternalSource::Discovery), &event).await.unwrap();
        assert_eq!(r.own_serial.as_deref(), Some("0a"));
        assert!(!r.new_external);
        assert!(ledger.external_certificate("cc").await.unwrap().is_none());

        // Endpoints scanned at once that serve the same new certificate: one of them adds it.
        let e = cert("ee", ExternalSource::Discovery);
        let units = (0..8u16).map(|i| {
            let (ledger, e, event) = (ledger.clone(), e.clone(), event.clone());
            let mut s = scan("ee");
            s.port = 10_000 + i;
            tokio::spawn(async move { ledger.record_endpoint(&s, &e, &event).await.unwrap() })
        });
        let mut added = 0;
        for u in units.collect::<Vec<_>>() {
            let r = u.await.unwrap();
            assert_eq!(r.endpoint, EndpointChange::New);
            added += usize::from(r.new_external);
        }
        assert_eq!(added, 1);
        assert_eq!(ledger.endpoints_of("ee").await.unwrap().len(), 8);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn endpoints_and_imports_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display());
        battery(&Ledger::connect(&url, 4).await.unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn endpoints_and_imports_on_postgres() {
        let Some(db) = crate::ledger::test_db::TestPg::create().await else { return };
        let ledger = Ledger::connect(&db.url, 2).await.unwrap();
        battery(&ledger).await;
        ledger.close().await;
    }
}
