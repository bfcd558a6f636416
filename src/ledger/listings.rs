//! Read-only lists the admin API shows: EST users, live SCEP challenges, ACME EAB keys and
//! accounts, and the endpoints discovery scanned. Secrets are never selected (no password
//! hash, challenge hash or HMAC key leaves the ledger through these).

use serde::Serialize;
use sqlx::Row;

use super::{now, Ledger, LedgerError};

/// An EST user (no password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EstUserListing {
    /// EST label.
    pub label: String,
    /// User name.
    pub name: String,
    /// When it was created or its password last set.
    pub created_at: i64,
}

/// A live SCEP challenge (not the challenge itself).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScepChallengeListing {
    /// Profile.
    pub profile: String,
    /// CLM owner.
    pub owner: Option<String>,
    /// Enrollments left.
    pub uses_left: i64,
    /// Expiry.
    pub expires_at: i64,
    /// Creation.
    pub created_at: i64,
}

/// An EAB key (not its HMAC key).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EabKeyListing {
    /// Key id.
    pub kid: String,
    /// CLM owner.
    pub owner: String,
    /// Profile forced on the account.
    pub profile: Option<String>,
    /// The account bound with it.
    pub account_id: Option<String>,
    /// Creation.
    pub created_at: i64,
}

/// An ACME account.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AcmeAccountListing {
    /// Account id.
    pub id: String,
    /// valid, deactivated or revoked.
    pub status: String,
    /// Contact URLs (JSON array as stored).
    pub contact: String,
    /// EAB key it was bound with.
    pub eab_kid: Option<String>,
    /// CLM owner.
    pub owner: Option<String>,
    /// Creation.
    pub created_at: i64,
}

/// A scanned endpoint and what it served at the last scan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointListing {
    /// Host.
    pub host: String,
    /// Port.
    pub port: i64,
    /// SNI sent.
    pub sni: String,
    /// SHA-256 of the leaf served.
    pub fingerprint: String,
    /// TLS version.
    pub tls_version: Option<String>,
    /// Findings (JSON array as stored).
    pub findings: String,
    /// Last scan that saw it.
    pub last_seen: i64,
}

impl Ledger {
    /// EST users by label and name.
    pub async fn est_users(&self) -> Result<Vec<EstUserListing>, LedgerError> {
        let rows = sqlx::query("SELECT label, name, created_at FROM est_users ORDER BY label, name")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EstUserListing {
                    label: r.try_get("label")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// SCEP challenges not expired and not used up, newest first.
    pub async fn scep_challenges(&self) -> Result<Vec<ScepChallengeListing>, LedgerError> {
        let rows = sqlx::query(
            "SELECT profile, owner, uses_left, expires_at, created_at FROM scep_challenges \
             WHERE expires_at > $1 AND uses_left > 0 ORDER BY created_at DESC LIMIT 1000",
        )
        .bind(now())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScepChallengeListing {
                    profile: r.try_get("profile")?,
                    owner: r.try_get("owner")?,
                    uses_left: r.try_get("uses_left")?,
                    expires_at: r.try_get("expires_at")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// EAB keys, newest first.
    pub async fn eab_keys(&self) -> Result<Vec<EabKeyListing>, LedgerError> {
        let rows = sqlx::query(
            "SELECT kid, owner, profile, account_id, created_at FROM acme_eab_keys ORDER BY created_at DESC, kid LIMIT 1000",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EabKeyListing {
                    kid: r.try_get("kid")?,
                    owner: r.try_get("owner")?,
                    profile: r.try_get("profile")?,
                    account_id: r.try_get("account_id")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Up to `limit` ACME accounts with an id after `after`, by id.
    pub async fn acme_accounts(&self, after: &str, limit: i64) -> Result<Vec<AcmeAccountListing>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, status, contact, eab_kid, owner, created_at FROM acme_accounts WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AcmeAccountListing {
                    id: r.try_get("id")?,
                    status: r.try_get("status")?,
                    contact: r.try_get("contact")?,
                    eab_kid: r.try_get("eab_kid")?,
                    owner: r.try_get("owner")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Up to `limit` scanned endpoints after `(host, port, sni)`, in that order.
    pub async fn endpoints(&self, after: (&str, i64, &str), limit: i64) -> Result<Vec<EndpointListing>, LedgerError> {
        let rows = sqlx::query(
            "SELECT host, port, sni, fingerprint_sha256, tls_version, findings, last_seen FROM endpoints \
             WHERE (host, port, sni) > ($1, $2, $3) ORDER BY host, port, sni LIMIT $4",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(after.2)
        .bind(limit)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EndpointListing {
                    host: r.try_get("host")?,
                    port: r.try_get("port")?,
                    sni: r.try_get("sni")?,
                    fingerprint: r.try_get("fingerprint_sha256")?,
                    tls_version: r.try_get("tls_version")?,
                    findings: r.try_get("findings")?,
                    last_seen: r.try_get("last_seen")?,
                })
            })
            .collect()
    }
}
