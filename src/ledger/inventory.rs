//! The CLM inventory: privca's own certificates and the external ones (imported or discovered)
//! read as one list, the fields an operator may change after issuance, and bulk flags for early
//! renewal. Status is derived when reading: revoked, superseded (a successor was found),
//! expired, expiring (inside the tier's first notice threshold) or valid.

use serde::Serialize;
use sqlx::{any::AnyRow, Row};

use super::{
    audit, now,
    statement::{bind_values, Value},
    Ledger, LedgerError,
};
use crate::{audit::AuditEvent, policy::Tier};

/// Certificates per UPDATE of [`Ledger::flag_renewal_of`].
const FLAGS_PER_STATEMENT: usize = 500;

/// The inventory columns of privca's certificates.
macro_rules! privca_columns {
    () => {
        "fingerprint_sha256 AS fingerprint, serial, issuer_id AS issuer, subject, sans, not_before, not_after, owner, \
         tier, application, renewal_method, tags, superseded_by, status, revocation_reason, \
         CASE WHEN requester LIKE 'acme:%' THEN 'acme' WHEN requester LIKE 'est:%' THEN 'est' \
         WHEN requester LIKE 'scep:%' THEN 'scep' WHEN requester LIKE 'system:%' THEN 'privca' ELSE 'cli' END \
         AS source, 'privca' AS origin, profile"
    };
}

/// The same columns of external certificates.
macro_rules! external_columns {
    () => {
        "fingerprint_sha256 AS fingerprint, serial, issuer, subject, sans, not_before, not_after, owner, tier, \
         application, renewal_method, tags, CAST(NULL AS TEXT) AS superseded_by, 'valid' AS status, \
         CAST(NULL AS TEXT) AS revocation_reason, source, 'external' AS origin, '' AS profile"
    };
}

/// The inventory as one relation over both tables (`origin` is `privca` or `external`).
macro_rules! inventory_relation {
    () => {
        concat!(
            "(SELECT ",
            privca_columns!(),
            " FROM certificates UNION ALL SELECT ",
            external_columns!(),
            " FROM external_certificates) inv"
        )
    };
}

/// Status of an inventory certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InventoryStatus {
    /// Live, outside its tier's first notice threshold.
    Valid,
    /// Live, inside its tier's first notice threshold.
    Expiring,
    /// Past its notAfter.
    Expired,
    /// Revoked.
    Revoked,
    /// A valid successor exists.
    Superseded,
}

impl InventoryStatus {
    /// Name used in filters and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Superseded => "superseded",
        }
    }

    /// Parses a filter value.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Valid, Self::Expiring, Self::Expired, Self::Revoked, Self::Superseded]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// One inventory certificate.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryItem {
    /// SHA-256 of the DER certificate, lower-case hex.
    pub fingerprint: String,
    /// Serial number, hex.
    pub serial: String,
    /// privca issuer id, or the issuer DN of an external certificate.
    pub issuer: String,
    /// Subject DN.
    pub subject: String,
    /// SANs (`dns:…`, `ip:…`).
    pub sans: Vec<String>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Owner name.
    pub owner: String,
    /// Tier.
    pub tier: Tier,
    /// Business application.
    pub application: Option<String>,
    /// How it is renewed (`acme`, `est`, `scep`, `automatic` for privca's own, `manual`).
    pub renewal_method: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Derived status.
    pub status: InventoryStatus,
    /// Revocation reason, when revoked.
    pub revocation_reason: Option<String>,
    /// The certificate that replaced it.
    pub superseded_by: Option<String>,
    /// `acme`, `est`, `scep`, `cli`, `privca` (its own OCSP, TLS and RA certificates), `import`
    /// or `discovery`.
    pub source: String,
    /// Profile (privca's own certificates).
    pub profile: Option<String>,
}

/// Which inventory certificates to list.
#[derive(Debug, Clone, Default)]
pub struct InventoryFilter {
    /// Only this status.
    pub status: Option<InventoryStatus>,
    /// Only this tier.
    pub tier: Option<Tier>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Only this issuer (privca issuer id or external issuer DN).
    pub issuer: Option<String>,
    /// Only this source.
    pub source: Option<String>,
    /// Only certificates whose notAfter is before now + this many seconds (expired ones
    /// included).
    pub expiring_within: Option<i64>,
    /// Only certificates whose subject or SANs contain this text (case-insensitive).
    pub search: Option<String>,
    /// Continue after this (notAfter, fingerprint) (cursor of the previous page).
    pub after: Option<(i64, String)>,
    /// With a sort other than notAfter: the sort key's value of the previous page's last row
    /// (continue after (this, notAfter, fingerprint)).
    pub after_key: Option<SortValue>,
    /// Order of the rows (default: soonest expiry first).
    pub sort: InventorySort,
    /// At most this many rows.
    pub limit: i64,
}

/// What the inventory is sorted by; ties are broken by notAfter, then fingerprint, in the same
/// direction, so that (key, notAfter, fingerprint) is a stable cursor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InventorySortKey {
    /// notBefore (`issued_at`).
    IssuedAt,
    /// notAfter (the default).
    #[default]
    NotAfter,
    /// Owner name.
    Owner,
    /// Serial number (hex).
    Serial,
    /// Derived status.
    Status,
    /// Tier.
    Tier,
}

impl InventorySortKey {
    /// Every key.
    pub const ALL: [Self; 6] = [Self::IssuedAt, Self::NotAfter, Self::Owner, Self::Serial, Self::Status, Self::Tier];

    /// Name in `sort=` (prefixed with `-` for descending).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IssuedAt => "issued_at",
            Self::NotAfter => "not_after",
            Self::Owner => "owner",
            Self::Serial => "serial",
            Self::Status => "status",
            Self::Tier => "tier",
        }
    }

    /// The inventory column it orders by.
    fn column(self) -> &'static str {
        match self {
            Self::IssuedAt => "not_before",
            Self::NotAfter => "not_after",
            Self::Owner => "owner",
            Self::Serial => "serial",
            Self::Status => "inv_status",
            Self::Tier => "tier",
        }
    }

    /// Whether its values are integers (else text).
    pub fn numeric(self) -> bool {
        matches!(self, Self::IssuedAt | Self::NotAfter)
    }
}

/// A sort key and direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InventorySort {
    /// The key.
    pub key: InventorySortKey,
    /// Largest first.
    pub descending: bool,
}

impl InventorySort {
    /// Parses `key` or `-key`.
    pub fn parse(s: &str) -> Option<Self> {
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let key = InventorySortKey::ALL.into_iter().find(|k| k.as_str() == name)?;
        Some(Self { key, descending })
    }

    /// `key` or `-key`.
    pub fn name(self) -> String {
        format!("{}{}", if self.descending { "-" } else { "" }, self.key.as_str())
    }

    /// The ORDER BY list.
    fn order_by(self) -> String {
        let dir = if self.descending { " DESC" } else { "" };
        match self.key {
            InventorySortKey::NotAfter => format!("not_after{dir}, fingerprint{dir}"),
            k => format!("{}{dir}, not_after{dir}, fingerprint{dir}", k.column()),
        }
    }

    /// The ORDER BY list of privca's own certificates: the same order, but by serial alone
    /// where the sort is by serial (unique in that table, so the ties never happen), which
    /// its primary key serves without sorting.
    fn privca_order_by(self) -> String {
        match self.key {
            InventorySortKey::Serial => format!("serial{}", if self.descending { " DESC" } else { "" }),
            _ => self.order_by(),
        }
    }
}

/// A sort key's value in a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    /// notBefore or notAfter.
    Int(i64),
    /// Owner, serial, status or tier.
    Text(String),
}

impl InventoryItem {
    /// This row's value of `key`.
    pub fn sort_value(&self, key: InventorySortKey) -> SortValue {
        match key {
            InventorySortKey::IssuedAt => SortValue::Int(self.not_before),
            InventorySortKey::NotAfter => SortValue::Int(self.not_after),
            InventorySortKey::Owner => SortValue::Text(self.owner.clone()),
            InventorySortKey::Serial => SortValue::Text(self.serial.clone()),
            InventorySortKey::Status => SortValue::Text(self.status.as_str().to_owned()),
            InventorySortKey::Tier => SortValue::Text(self.tier.as_str().to_owned()),
        }
    }
}

/// What `privca inventory set` changes (`None`: unchanged; `Some(None)`: cleared).
#[derive(Debug, Clone, Default, Serialize)]
pub struct InventoryChange {
    /// New owner.
    pub owner: Option<String>,
    /// New tier.
    pub tier: Option<Tier>,
    /// New application.
    pub application: Option<Option<String>>,
    /// New renewal method.
    pub renewal_method: Option<Option<String>>,
    /// New tag set.
    pub tags: Option<Vec<String>>,
}

/// What "expiring" means per tier: each configured tier's first notice threshold in seconds,
/// and that of the tiers not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiringWindows {
    /// (tier, seconds).
    pub tiers: Vec<(String, i64)>,
    /// Seconds, for a tier not in `tiers`.
    pub other: i64,
}

impl ExpiringWindows {
    /// The window of `tier`.
    pub fn of(&self, tier: &str) -> i64 {
        self.tiers.iter().find(|(t, _)| t == tier).map_or(self.other, |(_, s)| *s)
    }

    /// The longest window.
    pub fn longest(&self) -> i64 {
        self.tiers.iter().map(|(_, s)| *s).chain([self.other]).max().unwrap_or(0)
    }

    /// The tier's window in seconds as an SQL expression over the `tier` column, each `?` a
    /// placeholder bound in order to the values returned.
    fn window_sql(&self) -> (String, Vec<Value>) {
        let mut values = Vec::with_capacity(self.tiers.len() * 2 + 1);
        let mut case = String::from("CASE tier");
        for (tier, secs) in &self.tiers {
            values.push(tier.into());
            values.push((*secs).into());
            case.push_str(" WHEN ? THEN ?");
        }
        values.push(self.other.into());
        case.push_str(" ELSE ? END");
        (case, values)
    }

    /// The status expression over [`inventory_relation`] (placeholders from `$1`, now), and
    /// the values to bind to them; further placeholders follow.
    fn status_sql(&self, now: i64) -> (String, Vec<Value>) {
        let (window, window_values) = self.window_sql();
        let mut case = String::with_capacity(window.len() + 16);
        for (i, part) in window.split('?').enumerate() {
            if i > 0 {
                case.push_str(&format!("${}", i + 1));
            }
            case.push_str(part);
        }
        let mut values = vec![Value::from(now)];
        values.extend(window_values);
        let sql = format!(
            "CASE WHEN status = 'revoked' THEN 'revoked' WHEN superseded_by IS NOT NULL THEN 'superseded' \
             WHEN not_after <= $1 THEN 'expired' WHEN not_after <= $1 + {case} THEN 'expiring' ELSE 'valid' END"
        );
        (sql, values)
    }
}

fn item(r: &AnyRow) -> Result<InventoryItem, LedgerError> {
    let sans: String = r.try_get("sans")?;
    let tags: String = r.try_get("tags")?;
    let tier: String = r.try_get("tier")?;
    let status: String = r.try_get("inv_status")?;
    let source: String = r.try_get("source")?;
    let method: Option<String> = r.try_get("renewal_method")?;
    let profile: String = r.try_get("profile")?;
    Ok(InventoryItem {
        fingerprint: r.try_get("fingerprint")?,
        serial: r.try_get("serial")?,
        issuer: r.try_get("issuer")?,
        subject: r.try_get("subject")?,
        sans: serde_json::from_str(&sans).map_err(|e| LedgerError::Corrupt(format!("sans: {e}")))?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        owner: r.try_get("owner")?,
        tier: Tier::stored(tier),
        application: r.try_get("application")?,
        renewal_method: method.unwrap_or_else(|| default_renewal_method(&source).to_owned()),
        tags: serde_json::from_str(&tags).map_err(|e| LedgerError::Corrupt(format!("tags: {e}")))?,
        status: InventoryStatus::parse(&status).ok_or_else(|| LedgerError::Corrupt(format!("status `{status}`")))?,
        revocation_reason: r.try_get("revocation_reason")?,
        superseded_by: r.try_get("superseded_by")?,
        source,
        profile: (!profile.is_empty()).then_some(profile),
    })
}

/// The renewal methods an operator may set.
const RENEWAL_METHODS: [&str; 4] = ["acme", "est", "scep", "manual"];

/// Checks a renewal method an operator sets (`""` clears it).
pub fn check_renewal_method(m: &str) -> Result<(), crate::error::CaError> {
    if m.is_empty() || RENEWAL_METHODS.contains(&m) {
        Ok(())
    } else {
        Err(crate::error::CaError::bad_request(format!("renewal method `{m}`: use acme, est, scep or manual")))
    }
}

/// The renewal method a certificate from `source` has unless an operator set one.
pub fn default_renewal_method(source: &str) -> &'static str {
    match source {
        "acme" => "acme",
        "est" => "est",
        "scep" => "scep",
        "privca" => "automatic",
        _ => "manual",
    }
}

/// Builds the WHERE clause of a filter; placeholders continue after the status parameters.
struct Where {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Where {
    fn new(values: Vec<Value>) -> Self {
        Where { clauses: Vec::new(), values }
    }

    /// Adds `sql`, in which each `?` stands for the next placeholder, bound in order to `values`.
    fn push(&mut self, sql: &str, values: Vec<Value>) {
        let mut values = values.into_iter();
        let mut clause = String::with_capacity(sql.len() + 8);
        for part in sql.split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(head) => {
                    self.values.push(values.next().unwrap_or(Value::NullText));
                    clause.push_str(head);
                    clause.push_str(&format!("${}", self.values.len()));
                }
                None => clause.push_str(part),
            }
        }
        self.clauses.push(clause);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

impl Ledger {
    /// Inventory certificates matching `filter`, in its order; `windows` says what
    /// "expiring" means per tier.
    pub async fn inventory(
        &self,
        filter: &InventoryFilter,
        windows: &ExpiringWindows,
    ) -> Result<Vec<InventoryItem>, LedgerError> {
        let t = now();
        let (status_sql, values) = windows.status_sql(t);
        let mut w = Where::new(values);
        if let Some(s) = filter.status {
            // The status's own column predicates rather than `inv_status = ?`: the planner
            // estimates those from the columns' statistics (the derived CASE only gets a default
            // selectivity), and the notAfter range bounds the scan on its index.
            let live = "status <> 'revoked' AND superseded_by IS NULL";
            match s {
                InventoryStatus::Revoked => w.push("status = 'revoked'", vec![]),
                InventoryStatus::Superseded => w.push("status <> 'revoked' AND superseded_by IS NOT NULL", vec![]),
                InventoryStatus::Expired => w.push(&format!("{live} AND not_after <= ?"), vec![t.into()]),
                InventoryStatus::Expiring => {
                    let (window, mut values) = windows.window_sql();
                    let mut bound = vec![t.into(), t.saturating_add(windows.longest()).into(), t.into()];
                    bound.append(&mut values);
                    w.push(&format!("{live} AND not_after > ? AND not_after <= ? AND not_after <= ? + {window}"), bound)
                }
                InventoryStatus::Valid => {
                    let (window, mut values) = windows.window_sql();
                    let mut bound = vec![t.into(), t.into()];
                    bound.append(&mut values);
                    w.push(&format!("{live} AND not_after > ? AND not_after > ? + {window}"), bound)
                }
            }
        }
        if let Some(tier) = &filter.tier {
            w.push("tier = ?", vec![tier.as_str().into()]);
        }
        if let Some(o) = &filter.owner {
            w.push("owner = ?", vec![o.into()]);
        }
        if let Some(i) = &filter.issuer {
            w.push("issuer = ?", vec![i.into()]);
        }
        if let Some(s) = &filter.source {
            w.push("source = ?", vec![s.into()]);
        }
        if let Some(secs) = filter.expiring_within {
            w.push("not_after <= ?", vec![t.saturating_add(secs).into()]);
        }
        if let Some(text) = &filter.search {
            let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            w.push(
                "(LOWER(subject) LIKE ? ESCAPE '\\' OR LOWER(sans) LIKE ? ESCAPE '\\')",
                vec![pattern.clone().into(), pattern.into()],
            );
        }
        let cmp = if filter.sort.descending { "<" } else { ">" };
        match (&filter.after, &filter.after_key, filter.sort.key) {
            (Some((not_after, fp)), _, InventorySortKey::NotAfter) => {
                w.push(&format!("(not_after, fingerprint) {cmp} (?, ?)"), vec![(*not_after).into(), fp.into()]);
            }
            (Some((not_after, fp)), Some(key), k) => {
                let key = match key {
                    SortValue::Int(v) => Value::from(*v),
                    SortValue::Text(v) => Value::from(v),
                };
                w.push(
                    &format!("({}, not_after, fingerprint) {cmp} (?, ?, ?)", k.column()),
                    vec![key, (*not_after).into(), fp.into()],
                );
            }
            _ => {}
        }
        w.values.push(filter.limit.max(0).into());
        let limit = w.values.len();
        // Each table filtered, ordered and cut on its own (its indexes serve the order), then
        // the two pages merged.
        let order = filter.sort.order_by();
        let branch = |columns: &str, table: &str, alias: &str, order: &str| {
            format!(
                "SELECT * FROM (SELECT * FROM (SELECT b.*, {status_sql} AS inv_status FROM (SELECT {columns} FROM {table}) b) c{} \
                 ORDER BY {order} LIMIT ${limit}) {alias}",
                w.sql()
            )
        };
        let sql = format!(
            "SELECT * FROM ({} UNION ALL {}) i ORDER BY {order} LIMIT ${limit}",
            branch(privca_columns!(), "certificates", "p", &filter.sort.privca_order_by()),
            branch(external_columns!(), "external_certificates", "x", &order),
        );
        let q = bind_values(sqlx::query(sqlx::AssertSqlSafe(sql)), w.values);
        let rows = q.fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(item).collect()
    }

    /// One inventory certificate by serial or fingerprint, with its DER.
    pub async fn inventory_item(
        &self,
        id: &str,
        windows: &ExpiringWindows,
    ) -> Result<Option<(InventoryItem, Vec<u8>)>, LedgerError> {
        let id = id.to_ascii_lowercase();
        let (status_sql, mut values) = windows.status_sql(now());
        values.push(id.into());
        let n = values.len();
        let sql = format!(
            "SELECT fingerprint, serial, issuer, subject, sans, not_before, not_after, owner, tier, application, \
             renewal_method, tags, superseded_by, revocation_reason, source, profile, {status_sql} AS inv_status \
             FROM {} WHERE fingerprint = ${n} OR serial = ${n} ORDER BY origin DESC LIMIT 1",
            inventory_relation!()
        );
        let row =
            bind_values(sqlx::query(sqlx::AssertSqlSafe(sql)), values).fetch_optional(&mut *self.conn().await?).await?;
        let Some(row) = row else { return Ok(None) };
        let item = item(&row)?;
        let der: Vec<u8> = sqlx::query(
            "SELECT der FROM certificates WHERE fingerprint_sha256 = $1 UNION ALL \
             SELECT der FROM external_certificates WHERE fingerprint_sha256 = $1",
        )
        .bind(&item.fingerprint)
        .fetch_one(&mut *self.conn().await?)
        .await?
        .try_get("der")?;
        Ok(Some((item, der)))
    }

    /// Applies `change` to the certificate `fingerprint` (either table), with its audit row.
    /// `NotFound` if no inventory certificate has that fingerprint.
    pub async fn set_inventory(
        &self,
        fingerprint: &str,
        change: &InventoryChange,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let mut done = 0;
        for table in ["certificates", "external_certificates"] {
            let sql = format!(
                "UPDATE {table} SET owner = COALESCE($1, owner), tier = COALESCE($2, tier), \
                 application = CASE WHEN $3 = 1 THEN $4 ELSE application END, \
                 renewal_method = CASE WHEN $5 = 1 THEN $6 ELSE renewal_method END, \
                 tags = COALESCE($7, tags) WHERE fingerprint_sha256 = $8"
            );
            let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(change.owner.clone())
                .bind(change.tier.as_ref().map(|t| t.as_str().to_owned()))
                .bind(i64::from(change.application.is_some()))
                .bind(change.application.clone().flatten())
                .bind(i64::from(change.renewal_method.is_some()))
                .bind(change.renewal_method.clone().flatten())
                .bind(change.tags.as_ref().map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".into())))
                .bind(fingerprint)
                .execute(&mut *tx)
                .await?;
            done += r.rows_affected();
        }
        if done == 0 {
            return Err(LedgerError::NotFound(format!("certificate {fingerprint}")));
        }
        // The policy job looks at it again at its next run, under its new owner and tier.
        sqlx::query("DELETE FROM clm_looks WHERE fingerprint = $1").bind(fingerprint).execute(&mut *tx).await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Flags the valid privca certificates among `fingerprints` not flagged yet for early
    /// renewal at `at`, with one audit row, in one unit of work; returns how many were flagged.
    pub async fn flag_renewal_of(
        &self,
        fingerprints: &[String],
        at: i64,
        event: &AuditEvent,
    ) -> Result<u64, LedgerError> {
        let mut tx = self.begin().await?;
        let mut done = 0;
        for chunk in fingerprints.chunks(FLAGS_PER_STATEMENT) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "UPDATE certificates SET renew_early_at = $1 WHERE status = 'valid' \
                 AND renew_early_at IS NULL AND not_after > $1 AND fingerprint_sha256 IN ({})",
                list.join(", ")
            );
            let values: Vec<Value> = std::iter::once(Value::from(at)).chain(chunk.iter().map(Value::from)).collect();
            // The statements hold placeholders only; every value is bound.
            let q = bind_values(sqlx::query(sqlx::AssertSqlSafe(sql)), values.clone());
            done += q.execute(&mut *tx).await?.rows_affected();
            // The policy job looks at them at its next run.
            let sql = format!(
                "DELETE FROM clm_looks WHERE fingerprint IN (SELECT fingerprint_sha256 FROM certificates \
                 WHERE renew_early_at = $1 AND fingerprint_sha256 IN ({}))",
                list.join(", ")
            );
            bind_values(sqlx::query(sqlx::AssertSqlSafe(sql)), values).execute(&mut *tx).await?;
        }
        let mut event = event.clone();
        event.detail["flagged"] = serde_json::json!(done);
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Flags every valid privca certificate of `issuer` (or all, with `None`) not flagged yet
    /// for early renewal at `at`, with one audit row; returns how many were flagged.
    pub async fn flag_renewal_by_issuer(
        &self,
        issuer: Option<&str>,
        at: i64,
        event: &AuditEvent,
    ) -> Result<u64, LedgerError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE certificates SET renew_early_at = $1 WHERE status = 'valid' \
             AND renew_early_at IS NULL AND not_after > $1 AND ($2 IS NULL OR issuer_id = $3)",
        )
        .bind(at)
        .bind(issuer.map(str::to_owned))
        .bind(issuer.unwrap_or_default())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // The policy job looks at them at its next run.
        sqlx::query(
            "DELETE FROM clm_looks WHERE fingerprint IN \
             (SELECT fingerprint_sha256 FROM certificates WHERE renew_early_at = $1)",
        )
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let mut event = event.clone();
        event.detail["flagged"] = serde_json::json!(done);
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(done)
    }
}

/// Where a certificate was seen served.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Host name or address scanned.
    pub host: String,
    /// Port.
    pub port: i64,
    /// SNI sent ('' for none).
    pub sni: String,
    /// TLS version negotiated.
    pub tls_version: Option<String>,
    /// Findings at the last scan.
    pub findings: Vec<String>,
    /// First scan that saw this certificate here.
    pub first_seen: i64,
    /// Last scan that saw it.
    pub last_seen: i64,
    /// When it was first seen deployed here.
    pub deployed_at: Option<i64>,
}

impl Ledger {
    /// The endpoints that served `fingerprint` at their last scan.
    pub async fn endpoints_of(&self, fingerprint: &str) -> Result<Vec<Endpoint>, LedgerError> {
        let rows = sqlx::query(
            "SELECT host, port, sni, tls_version, findings, first_seen, last_seen, deployed_at FROM endpoints \
             WHERE fingerprint_sha256 = $1 ORDER BY host, port, sni",
        )
        .bind(fingerprint)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let findings: String = r.try_get("findings")?;
                Ok(Endpoint {
                    host: r.try_get("host")?,
                    port: r.try_get("port")?,
                    sni: r.try_get("sni")?,
                    tls_version: r.try_get("tls_version")?,
                    findings: serde_json::from_str(&findings).unwrap_or_default(),
                    first_seen: r.try_get("first_seen")?,
                    last_seen: r.try_get("last_seen")?,
                    deployed_at: r.try_get("deployed_at")?,
                })
            })
            .collect()
    }
}

/// Inventory counts for metrics: certificates by status, tier and issuer, and each tier's
/// earliest expiry among its live certificates.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InventoryStats {
    /// (status, tier, issuer, count).
    pub counts: Vec<(String, String, String, i64)>,
    /// (tier, earliest notAfter of a valid, unsuperseded, unexpired certificate).
    pub earliest_expiry: Vec<(String, i64)>,
}

impl Ledger {
    /// Counts of the whole inventory (a scan: for the policy job's schedule, not per request).
    pub async fn inventory_stats(&self, windows: &ExpiringWindows) -> Result<InventoryStats, LedgerError> {
        let t = now();
        let (status_sql, values) = windows.status_sql(t);
        let sql = format!(
            "SELECT inv_status, tier, issuer, COUNT(*) AS n FROM (SELECT tier, issuer, {status_sql} AS inv_status FROM {}) i \
             GROUP BY inv_status, tier, issuer ORDER BY inv_status, tier, issuer",
            inventory_relation!()
        );
        let mut conn = self.conn().await?;
        let rows = bind_values(sqlx::query(sqlx::AssertSqlSafe(sql)), values).fetch_all(&mut *conn).await?;
        let counts = rows
            .iter()
            .map(|r| Ok((r.try_get("inv_status")?, r.try_get("tier")?, r.try_get("issuer")?, r.try_get("n")?)))
            .collect::<Result<Vec<_>, LedgerError>>()?;
        let sql = format!(
            "SELECT tier, MIN(not_after) AS first FROM {} WHERE status = 'valid' AND superseded_by IS NULL \
             AND not_after > $1 GROUP BY tier ORDER BY tier",
            inventory_relation!()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(t).fetch_all(&mut *conn).await?;
        let earliest_expiry = rows
            .iter()
            .map(|r| Ok((r.try_get("tier")?, r.try_get("first")?)))
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Ok(InventoryStats { counts, earliest_expiry })
    }
}
