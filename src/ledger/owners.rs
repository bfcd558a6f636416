//! Units of work on CLM owners: a person or team with contacts. Certificates name their owner;
//! a name that no owner row claims yet is listed as unclaimed, with its certificate count.

use serde::Serialize;
use sqlx::{any::AnyRow, Row};

use super::{audit, now, Ledger, LedgerError};
use crate::audit::AuditEvent;

/// An owner record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The name certificates carry (`network-team`, `alice`).
    pub name: String,
    /// `person` or `team`.
    pub kind: String,
    /// Human name.
    pub display_name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Chat or automation webhook URL.
    pub webhook: Option<String>,
    /// Payload of the webhook: `json` (signed), `slack` or `teams`.
    pub webhook_format: String,
    /// Phone number for SMS.
    pub phone: Option<String>,
    /// The owner escalations go to (else the security lead).
    pub escalation: Option<String>,
}

impl Owner {
    /// A new owner with no contacts.
    pub fn new(name: &str, kind: &str) -> Self {
        Owner {
            name: name.to_owned(),
            kind: kind.to_owned(),
            display_name: None,
            email: None,
            webhook: None,
            webhook_format: "json".into(),
            phone: None,
            escalation: None,
        }
    }
}

/// An owner name certificates carry that no owner row claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnclaimedOwner {
    /// The name.
    pub name: String,
    /// How many inventory certificates carry it.
    pub certificates: i64,
}

fn owner(r: &AnyRow) -> Result<Owner, LedgerError> {
    Ok(Owner {
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        display_name: r.try_get("display_name")?,
        email: r.try_get("email")?,
        webhook: r.try_get("webhook")?,
        webhook_format: r.try_get("webhook_format")?,
        phone: r.try_get("phone")?,
        escalation: r.try_get("escalation")?,
    })
}

/// The columns [`owner`] reads, for `concat!` into static SQL.
macro_rules! owner_columns {
    () => {
        "name, kind, display_name, email, webhook, webhook_format, phone, escalation"
    };
}

impl Ledger {
    /// Creates or replaces the owner `o.name`, with its audit row. Returns whether it is new.
    pub async fn put_owner(&self, o: &Owner, event: &AuditEvent) -> Result<bool, LedgerError> {
        let mut tx = self.begin().await?;
        let t = now();
        let existed =
            sqlx::query("SELECT 1 FROM owners WHERE name = $1").bind(&o.name).fetch_optional(&mut *tx).await?;
        let sql = if existed.is_some() {
            "UPDATE owners SET kind = $2, display_name = $3, email = $4, webhook = $5, webhook_format = $6, \
             phone = $7, escalation = $8, updated_at = $9 WHERE name = $1"
        } else {
            "INSERT INTO owners (name, kind, display_name, email, webhook, webhook_format, phone, escalation, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)"
        };
        sqlx::query(sql)
            .bind(&o.name)
            .bind(&o.kind)
            .bind(o.display_name.clone())
            .bind(o.email.clone())
            .bind(o.webhook.clone())
            .bind(&o.webhook_format)
            .bind(o.phone.clone())
            .bind(o.escalation.clone())
            .bind(t)
            .execute(&mut *tx)
            .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(existed.is_none())
    }

    /// One owner by name.
    pub async fn owner(&self, name: &str) -> Result<Option<Owner>, LedgerError> {
        let row = sqlx::query(concat!("SELECT ", owner_columns!(), " FROM owners WHERE name = $1"))
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(owner).transpose()
    }

    /// Every owner record, by name.
    pub async fn owners(&self) -> Result<Vec<Owner>, LedgerError> {
        let rows = sqlx::query(concat!("SELECT ", owner_columns!(), " FROM owners ORDER BY name"))
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(owner).collect()
    }

    /// Owner names that certificates carry and no owner record claims, with their counts.
    pub async fn unclaimed_owners(&self) -> Result<Vec<UnclaimedOwner>, LedgerError> {
        let rows = sqlx::query(
            "SELECT owner, COUNT(*) AS n FROM (SELECT owner FROM certificates UNION ALL \
             SELECT owner FROM external_certificates) c WHERE owner NOT IN (SELECT name FROM owners) \
             GROUP BY owner ORDER BY owner",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(|r| Ok(UnclaimedOwner { name: r.try_get("owner")?, certificates: r.try_get("n")? })).collect()
    }
}
