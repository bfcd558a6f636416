//! Units of work on admin users, API tokens, dashboard sessions and failed logins (the
//! `admin_*` tables). Secrets never reach these rows in the clear: passwords are argon2id PHC
//! strings, TOTP secrets are sealed by the token, API tokens and session ids are SHA-256 hashes.

use serde::Serialize;
use sqlx::{any::AnyRow, Row};

use super::{audit, now, Ledger, LedgerError};
use crate::audit::AuditEvent;

/// An admin user.
#[derive(Debug, Clone, Serialize)]
pub struct AdminUser {
    /// Login name.
    pub name: String,
    /// `admin`, `approver`, `operator`, `owner` or `auditor`.
    pub role: String,
    /// For role `owner`: the CLM owner it acts for.
    pub owner: Option<String>,
    /// argon2id PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// The TOTP secret, sealed by the token; `None` until enrolled.
    #[serde(skip)]
    pub totp_secret: Option<String>,
    /// Whether a TOTP secret is enrolled.
    pub totp: bool,
    /// When the user was disabled.
    pub disabled_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
}

/// An API token (its secret is never stored, only its SHA-256).
#[derive(Debug, Clone, Serialize)]
pub struct AdminToken {
    /// Public id (the `<id>` of `pca_<id>_<secret>`).
    pub id: String,
    /// The user it was made for, if any.
    pub user_name: Option<String>,
    /// Role it acts with (`metrics`: reads `/metrics` only).
    pub role: String,
    /// For role `owner`: the CLM owner.
    pub owner: Option<String>,
    /// SHA-256 of the secret.
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    /// Free text.
    pub note: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
    /// When revoked.
    pub revoked_at: Option<i64>,
    /// Last accepted use (to the minute).
    pub last_used_at: Option<i64>,
}

/// A dashboard session.
#[derive(Debug, Clone)]
pub struct AdminSession {
    /// The user.
    pub user_name: String,
    /// The CSRF token of its forms.
    pub csrf: String,
    /// Expiry.
    pub expires_at: i64,
}

fn user(r: &AnyRow) -> Result<AdminUser, LedgerError> {
    let totp_secret: Option<String> = r.try_get("totp_secret")?;
    Ok(AdminUser {
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        owner: r.try_get("owner")?,
        password_hash: r.try_get("password_hash")?,
        totp: totp_secret.is_some(),
        totp_secret,
        disabled_at: r.try_get("disabled_at")?,
        created_at: r.try_get("created_at")?,
    })
}

fn token(r: &AnyRow) -> Result<AdminToken, LedgerError> {
    Ok(AdminToken {
        id: r.try_get("id")?,
        user_name: r.try_get("user_name")?,
        role: r.try_get("role")?,
        owner: r.try_get("owner")?,
        secret_hash: r.try_get("secret_hash")?,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

const USER_COLUMNS: &str = "name, role, owner, password_hash, totp_secret, disabled_at, created_at";
const TOKEN_COLUMNS: &str =
    "id, user_name, role, owner, secret_hash, note, created_at, expires_at, revoked_at, last_used_at";

impl Ledger {
    /// Creates user `u`, with its audit row; `Conflict` when the name is taken.
    pub async fn create_admin_user(&self, u: &AdminUser, event: &AuditEvent) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO admin_users (name, role, owner, password_hash, totp_secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&u.name)
        .bind(&u.role)
        .bind(u.owner.clone())
        .bind(&u.password_hash)
        .bind(u.totp_secret.clone())
        .bind(now())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(LedgerError::Conflict(format!("admin user `{}` exists", u.name)));
        }
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// User `name`.
    pub async fn admin_user(&self, name: &str) -> Result<Option<AdminUser>, LedgerError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM admin_users WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(&mut *self.conn().await?).await?;
        row.as_ref().map(user).transpose()
    }

    /// Every user, by name.
    pub async fn admin_users(&self) -> Result<Vec<AdminUser>, LedgerError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM admin_users ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(user).collect()
    }

    /// Whether any user exists (the first `serve` explains how to create one otherwise).
    pub async fn has_admin_users(&self) -> Result<bool, LedgerError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM admin_users").fetch_one(&mut *self.conn().await?).await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Changes `name`'s password hash and/or sealed TOTP secret (`Some(None)` removes it) and
    /// disabled state, with the audit row. `NotFound` for an unknown user.
    pub async fn update_admin_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        totp_secret: Option<Option<&str>>,
        disabled: Option<bool>,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let found =
            sqlx::query("SELECT name FROM admin_users WHERE name = $1").bind(name).fetch_optional(&mut *tx).await?;
        if found.is_none() {
            return Err(LedgerError::NotFound(format!("admin user `{name}`")));
        }
        if let Some(hash) = password_hash {
            sqlx::query("UPDATE admin_users SET password_hash = $1 WHERE name = $2")
                .bind(hash)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(secret) = totp_secret {
            sqlx::query("UPDATE admin_users SET totp_secret = $1, totp_last_step = 0 WHERE name = $2")
                .bind(secret.map(str::to_owned))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(disabled) = disabled {
            sqlx::query("UPDATE admin_users SET disabled_at = $1 WHERE name = $2")
                .bind(disabled.then(now))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accepts TOTP time step `step` for `name` only if it is later than the last accepted one
    /// (RFC 6238 §5.2: a code is used once), atomically across instances.
    pub async fn accept_totp_step(&self, name: &str, step: i64) -> Result<bool, LedgerError> {
        let done = sqlx::query("UPDATE admin_users SET totp_last_step = $1 WHERE name = $2 AND totp_last_step < $1")
            .bind(step)
            .bind(name)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a new API token, with its audit row.
    pub async fn create_admin_token(&self, t: &AdminToken, event: &AuditEvent) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO admin_tokens (id, user_name, role, owner, secret_hash, note, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.id)
        .bind(t.user_name.clone())
        .bind(&t.role)
        .bind(t.owner.clone())
        .bind(t.secret_hash.clone())
        .bind(t.note.clone())
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Token `id`.
    pub async fn admin_token(&self, id: &str) -> Result<Option<AdminToken>, LedgerError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.conn().await?).await?;
        row.as_ref().map(token).transpose()
    }

    /// Every token, newest first.
    pub async fn admin_tokens(&self) -> Result<Vec<AdminToken>, LedgerError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens ORDER BY created_at DESC, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *self.conn().await?).await?;
        rows.iter().map(token).collect()
    }

    /// Revokes token `id`, with its audit row; false when unknown or already revoked.
    pub async fn revoke_admin_token(&self, id: &str, event: &AuditEvent) -> Result<bool, LedgerError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a use of token `id` at `at`, at most once a minute (no write per request).
    pub async fn touch_admin_token(&self, id: &str, at: i64) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE admin_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(at)
        .bind(id)
        .bind(at - 60)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Opens a dashboard session, with the login's audit row.
    pub async fn create_admin_session(
        &self,
        id_hash: &[u8],
        s: &AdminSession,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let t = now();
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at < $1").bind(t).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO admin_sessions (id_hash, user_name, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash.to_vec())
        .bind(&s.user_name)
        .bind(&s.csrf)
        .bind(t)
        .bind(s.expires_at)
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The unexpired session whose id hashes to `id_hash`.
    pub async fn admin_session(&self, id_hash: &[u8]) -> Result<Option<AdminSession>, LedgerError> {
        let row = sqlx::query(
            "SELECT user_name, csrf, expires_at FROM admin_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash.to_vec())
        .bind(now())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|r| {
            Ok(AdminSession {
                user_name: r.try_get("user_name")?,
                csrf: r.try_get("csrf")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends the session whose id hashes to `id_hash`.
    pub async fn delete_admin_session(&self, id_hash: &[u8]) -> Result<(), LedgerError> {
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
            .bind(id_hash.to_vec())
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// Records one failed login against each of `subjects` (`user:NAME`, `addr:IP`), with its
    /// audit row, and forgets failures older than a day.
    pub async fn record_login_failure(&self, subjects: &[String], event: &AuditEvent) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        let t = now();
        sqlx::query("DELETE FROM admin_login_failures WHERE at < $1").bind(t - 86_400).execute(&mut *tx).await?;
        for s in subjects {
            sqlx::query("INSERT INTO admin_login_failures (subject, at) VALUES ($1, $2)")
                .bind(s)
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Failed logins against `subject` since `since`.
    pub async fn login_failures(&self, subject: &str, since: i64) -> Result<i64, LedgerError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM admin_login_failures WHERE subject = $1 AND at >= $2")
            .bind(subject)
            .bind(since)
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(row.try_get("n")?)
    }
}
