//! Units of work on ACME objects: accounts, EAB keys, orders, authorizations, redeemed nonces
//! and the shared nonce key. The objects are `privca_acme::backend` types; the ledger only
//! stores them. Secrets (EAB HMAC keys, the nonce key) come and go sealed by the token
//! ([`crate::sealing`]); the ledger never sees them in the clear, except EAB keys written before
//! migration 11, which [`Ledger::clear_eab_keys`] finds for sealing at start-up.

use privca_acme::backend::{
    Account, AccountStatus, Authz, AuthzStatus, EabKey, Identifier, Order, OrderStatus, Redeemed,
};
use sqlx::{any::AnyRow, AnyConnection, Row};
use zeroize::Zeroizing;

use super::{audit, by_key, by_key::IDS_PER_STATEMENT, now, statement::Statement, AnyQuery, Ledger, LedgerError};
use crate::audit::AuditEvent;

fn corrupt(what: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(format!("{what}: {e}"))
}

fn json<T: serde::de::DeserializeOwned>(r: &AnyRow, column: &str) -> Result<T, LedgerError> {
    let text: String = r.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(column, e))
}

fn opt_json(r: &AnyRow, column: &str) -> Result<Option<serde_json::Value>, LedgerError> {
    let text: Option<String> = r.try_get(column)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(column, e))).transpose()
}

fn to_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

macro_rules! account_columns {
    () => {
        "id, thumbprint, jwk, status, contact, eab, owner, profile"
    };
}

fn account(r: &AnyRow) -> Result<Account, LedgerError> {
    let status: String = r.try_get("status")?;
    Ok(Account {
        id: r.try_get("id")?,
        thumbprint: r.try_get("thumbprint")?,
        jwk: json(r, "jwk")?,
        status: AccountStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        contact: json(r, "contact")?,
        eab: opt_json(r, "eab")?,
        owner: r.try_get("owner")?,
        profile: r.try_get("profile")?,
    })
}

macro_rules! order_columns {
    () => {
        "id, account_id, status, expires, identifiers, profile, replaces, replaces_serial, authz_ids, error, \
         certificate_serial, approval_id"
    };
}

fn order(r: &AnyRow) -> Result<Order, LedgerError> {
    let status: String = r.try_get("status")?;
    Ok(Order {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        status: OrderStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        expires: r.try_get("expires")?,
        identifiers: json(r, "identifiers")?,
        profile: r.try_get("profile")?,
        replaces: r.try_get("replaces")?,
        replaces_serial: r.try_get("replaces_serial")?,
        authz_ids: json(r, "authz_ids")?,
        error: opt_json(r, "error")?,
        certificate_serial: r.try_get("certificate_serial")?,
        approval_id: r.try_get("approval_id")?,
    })
}

macro_rules! authz_columns {
    () => {
        "id, account_id, identifier_type, identifier_value, wildcard, status, expires, challenges"
    };
}

fn authz(r: &AnyRow) -> Result<Authz, LedgerError> {
    let status: String = r.try_get("status")?;
    let wildcard: i64 = match r.try_get::<i64, _>("wildcard") {
        Ok(v) => v,
        Err(_) => i64::from(r.try_get::<i16, _>("wildcard")?),
    };
    Ok(Authz {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        identifier: Identifier { kind: r.try_get("identifier_type")?, value: r.try_get("identifier_value")? },
        wildcard: wildcard != 0,
        status: AuthzStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        expires: r.try_get("expires")?,
        challenges: json(r, "challenges")?,
    })
}

/// What [`Ledger::acme_cleanup`] removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct AcmeCleanup {
    /// Expired redeemed nonces.
    pub nonces: u64,
    /// Orders expired for longer than the retention.
    pub orders: u64,
    /// Authorizations expired for longer than the retention.
    pub authzs: u64,
}

/// Claims ACME order `id` for one finalization (`pending` → `processing`, with the approval
/// that now holds it); `Conflict` if it is not `pending`.
pub(super) async fn claim_order(conn: &mut AnyConnection, id: &str, approval: Option<i64>) -> Result<(), LedgerError> {
    claim_order_statement(id, approval).execute(conn).await
}

/// [`claim_order`] as a statement of a unit of work.
pub(super) fn claim_order_statement(id: &str, approval: Option<i64>) -> Statement {
    Statement::new(
        "UPDATE acme_orders SET status = 'processing', approval_id = $1 WHERE id = $2 AND status = 'pending'",
        vec![approval.into(), id.into()],
    )
    .one_row(format!("ACME order {id} is not pending"))
}

/// Hands a claimed ACME order back (`processing` → `pending`) after a failed issuance.
pub(super) async fn release_order(conn: &mut AnyConnection, id: &str) -> Result<(), LedgerError> {
    sqlx::query("UPDATE acme_orders SET status = 'pending' WHERE id = $1 AND status = 'processing'")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the certificate of a claimed ACME order (`valid`), as a statement of a unit of work.
pub(super) fn complete_order_statement(id: &str, serial: &str) -> Statement {
    Statement::new(
        "UPDATE acme_orders SET status = 'valid', certificate_serial = $1 WHERE id = $2",
        vec![serial.into(), id.into()],
    )
}

/// A new order; its parameters are [`bind_order`]'s.
const ORDER_INSERT: &str = "INSERT INTO acme_orders (id, account_id, status, expires, identifiers, profile, \
    replaces, replaces_serial, authz_ids, error, certificate_serial, approval_id, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL, $10)";
const ORDER_PARAMETERS: usize = 10;

fn bind_order<'q>(q: AnyQuery<'q>, o: &'q Order) -> AnyQuery<'q> {
    q.bind(&o.id)
        .bind(&o.account_id)
        .bind(o.status.as_str())
        .bind(o.expires)
        .bind(to_text(&o.identifiers))
        .bind(&o.profile)
        .bind(o.replaces.clone())
        .bind(o.replaces_serial.clone())
        .bind(to_text(&o.authz_ids))
        .bind(now())
}

/// `INSERT` of `n` new authorizations, eight parameters each from `$first` ([`bind_authzs`]).
fn authz_insert(n: usize, first: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p: Vec<String> = (0..8).map(|k| format!("${}", first + 8 * i + k)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO acme_authzs (id, account_id, identifier_type, identifier_value, wildcard, status, expires, \
         challenges) VALUES {}",
        rows.join(", ")
    )
}

fn bind_authzs<'q>(mut q: AnyQuery<'q>, authzs: &'q [Authz]) -> AnyQuery<'q> {
    for a in authzs {
        q = q
            .bind(&a.id)
            .bind(&a.account_id)
            .bind(&a.identifier.kind)
            .bind(&a.identifier.value)
            .bind(i16::from(a.wildcard))
            .bind(a.status.as_str())
            .bind(a.expires)
            .bind(to_text(&a.challenges));
    }
    q
}

/// One nonce to redeem, with the account its request read (for `kid` requests).
#[derive(Debug, Clone, Copy)]
pub struct NonceUse<'a> {
    /// The nonce.
    pub nonce: &'a str,
    /// When it stops being valid anyway (Unix seconds).
    pub expires: i64,
    /// The account the request named, as the request read it.
    pub account: Option<&'a Account>,
}

/// Nonces redeemed by one PostgreSQL statement at most.
pub const NONCES_PER_STATEMENT: usize = 32;

/// PostgreSQL: inserts `n` nonces, returning those that were new with their account's key,
/// status and contact (an INSERT inside a `WITH`, which SQLite lacks).
fn redeem_statement(n: usize) -> String {
    let values: Vec<String> =
        (0..n).map(|i| format!("(${}, ${}::bigint, ${}::text)", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
    format!(
        "WITH u (nonce, expires, account_id) AS (VALUES {}), \
         fresh AS (INSERT INTO acme_nonces (nonce, expires) SELECT nonce, expires FROM u \
         ON CONFLICT (nonce) DO NOTHING RETURNING nonce) \
         SELECT fresh.nonce AS nonce, a.thumbprint AS thumbprint, a.status AS status, a.contact AS contact \
         FROM fresh JOIN u ON u.nonce = fresh.nonce LEFT JOIN acme_accounts a ON a.id = u.account_id",
        values.join(", ")
    )
}

/// A first redemption's answer: `Fresh`, or `AccountChanged` if the account's key, status or
/// contact read with it differ from what the request read.
fn redeemed(row: &AnyRow, account: Option<&Account>) -> Result<Redeemed, LedgerError> {
    let Some(a) = account else { return Ok(Redeemed::Fresh) };
    let current = row.try_get::<Option<String>, _>("thumbprint")?.as_deref() == Some(a.thumbprint.as_str())
        && row.try_get::<Option<String>, _>("status")?.as_deref() == Some(a.status.as_str())
        && row.try_get::<Option<String>, _>("contact")? == Some(to_text(&a.contact));
    Ok(if current { Redeemed::Fresh } else { Redeemed::AccountChanged })
}

impl Ledger {
    /// The ACME nonce MAC key as sealed by the token (`sealing::seal`), stored as `fresh` on
    /// first use; every instance on this ledger reads the same value.
    pub async fn acme_nonce_key(&self, fresh: &str) -> Result<String, LedgerError> {
        sqlx::query(
            "INSERT INTO acme_settings (name, value) VALUES ('nonce_key_sealed', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(fresh)
        .execute(&mut *self.conn().await?)
        .await?;
        let row = sqlx::query("SELECT value FROM acme_settings WHERE name = 'nonce_key_sealed'")
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(row.try_get("value")?)
    }

    /// Records a redeemed nonce; `Used` if it was redeemed before. With `account`, the same
    /// statement reads that account's key, status and contact, and the answer is
    /// `AccountChanged` if they differ from `account`'s (another instance changed it).
    pub async fn redeem_acme_nonce(
        &self,
        nonce: &str,
        expires: i64,
        account: Option<&Account>,
    ) -> Result<Redeemed, LedgerError> {
        let row = sqlx::query(
            "INSERT INTO acme_nonces (nonce, expires) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING RETURNING \
             (SELECT thumbprint FROM acme_accounts WHERE id = $3) AS thumbprint, \
             (SELECT status FROM acme_accounts WHERE id = $3) AS status, \
             (SELECT contact FROM acme_accounts WHERE id = $3) AS contact",
        )
        .bind(nonce)
        .bind(expires)
        .bind(account.map(|a| a.id.as_str()))
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        match row {
            None => Ok(Redeemed::Used),
            Some(row) => redeemed(&row, account),
        }
    }

    /// `redeem_acme_nonce` for several distinct nonces at once, answers in the same order. On
    /// PostgreSQL one statement inserts them all and reads their accounts (at most
    /// [`NONCES_PER_STATEMENT`] per statement).
    pub async fn redeem_acme_nonces(&self, uses: &[NonceUse<'_>]) -> Result<Vec<Redeemed>, LedgerError> {
        if self.dialect == super::Dialect::Sqlite {
            let mut answers = Vec::with_capacity(uses.len());
            for u in uses {
                answers.push(self.redeem_acme_nonce(u.nonce, u.expires, u.account).await?);
            }
            return Ok(answers);
        }
        let mut answers = Vec::with_capacity(uses.len());
        for chunk in uses.chunks(NONCES_PER_STATEMENT) {
            // The statement holds placeholders only; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(redeem_statement(chunk.len())));
            for u in chunk {
                query = query.bind(u.nonce).bind(u.expires).bind(u.account.map(|a| a.id.as_str()));
            }
            let rows = query.fetch_all(&mut *self.conn().await?).await?;
            let mut fresh = std::collections::HashMap::with_capacity(rows.len());
            for row in &rows {
                fresh.insert(row.try_get::<String, _>("nonce")?, row);
            }
            for u in chunk {
                answers.push(match fresh.get(u.nonce) {
                    None => Redeemed::Used,
                    Some(row) => redeemed(row, u.account)?,
                });
            }
        }
        Ok(answers)
    }

    /// The account with key thumbprint `thumbprint`.
    pub async fn acme_account_by_key(&self, thumbprint: &str) -> Result<Option<Account>, LedgerError> {
        let row = sqlx::query(concat!("SELECT ", account_columns!(), " FROM acme_accounts WHERE thumbprint = $1"))
            .bind(thumbprint)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref().map(account).transpose()
    }

    /// The account `id`.
    pub async fn acme_account(&self, id: &str) -> Result<Option<Account>, LedgerError> {
        let row = sqlx::query(concat!("SELECT ", account_columns!(), " FROM acme_accounts WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.reader().await?)
            .await?;
        row.as_ref().map(account).transpose()
    }

    /// Creates an account, binding EAB key `eab_kid` in the same transaction (a key bound
    /// meanwhile is a `Conflict`), with its audit row.
    pub async fn create_acme_account(
        &self,
        a: &Account,
        eab_kid: Option<&str>,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        if let Some(kid) = eab_kid {
            let bound = sqlx::query("UPDATE acme_eab_keys SET account_id = $1 WHERE kid = $2 AND account_id IS NULL")
                .bind(&a.id)
                .bind(kid)
                .execute(&mut *tx)
                .await?;
            if bound.rows_affected() != 1 {
                return Err(LedgerError::Conflict(format!("EAB key {kid} is already bound")));
            }
        }
        sqlx::query(
            "INSERT INTO acme_accounts (id, thumbprint, jwk, status, contact, eab_kid, eab, owner, profile, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&a.id)
        .bind(&a.thumbprint)
        .bind(to_text(&a.jwk))
        .bind(a.status.as_str())
        .bind(to_text(&a.contact))
        .bind(eab_kid)
        .bind(a.eab.as_ref().map(to_text))
        .bind(a.owner.clone())
        .bind(a.profile.clone())
        .bind(now())
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores an account's key, status and contact, with an audit row.
    pub async fn update_acme_account(&self, a: &Account, event: &AuditEvent) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE acme_accounts SET thumbprint = $1, jwk = $2, status = $3, contact = $4 WHERE id = $5")
            .bind(&a.thumbprint)
            .bind(to_text(&a.jwk))
            .bind(a.status.as_str())
            .bind(to_text(&a.contact))
            .bind(&a.id)
            .execute(&mut *tx)
            .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a new EAB key (its HMAC key as sealed by the token, `sealing::seal`), with an
    /// audit row.
    pub async fn create_eab_key(&self, key: &EabKey, sealed: &str, event: &AuditEvent) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO acme_eab_keys (kid, hmac_key, sealed_key, owner, profile, created_at) \
             VALUES ($1, '', $2, $3, $4, $5)",
        )
        .bind(&key.kid)
        .bind(sealed)
        .bind(&key.owner)
        .bind(key.profile.clone())
        .bind(now())
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The EAB key `kid` and its sealed HMAC key (`None` for a key stored in the clear before
    /// migration 11 and not sealed yet).
    pub async fn eab_key(&self, kid: &str) -> Result<Option<(EabKey, Option<String>)>, LedgerError> {
        let row = sqlx::query("SELECT kid, sealed_key, owner, profile, account_id FROM acme_eab_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let key = EabKey {
            kid: r.try_get("kid")?,
            hmac_key: Default::default(),
            owner: r.try_get("owner")?,
            profile: r.try_get("profile")?,
            bound_account: r.try_get("account_id")?,
        };
        Ok(Some((key, r.try_get("sealed_key")?)))
    }

    /// EAB keys still stored in the clear (created before migration 11): (kid, base64url HMAC
    /// key).
    pub async fn clear_eab_keys(&self) -> Result<Vec<(String, Zeroizing<String>)>, LedgerError> {
        let rows = sqlx::query("SELECT kid, hmac_key FROM acme_eab_keys WHERE hmac_key <> '' ORDER BY kid")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("kid")?, Zeroizing::new(r.try_get("hmac_key")?)))).collect()
    }

    /// Replaces the clear HMAC key of EAB key `kid` by `sealed`, if the row still holds
    /// `clear` (another instance may have sealed it meanwhile); true if this call did. On
    /// SQLite the old value is overwritten in the file too (`secure_delete`).
    pub async fn seal_eab_key(&self, kid: &str, clear: &str, sealed: &str) -> Result<bool, LedgerError> {
        let mut tx = self.begin().await?;
        let sqlite = self.dialect == super::Dialect::Sqlite;
        if sqlite {
            sqlx::query("PRAGMA secure_delete = ON").execute(&mut *tx).await?;
        }
        let done =
            sqlx::query("UPDATE acme_eab_keys SET sealed_key = $1, hmac_key = '' WHERE kid = $2 AND hmac_key = $3")
                .bind(sealed)
                .bind(kid)
                .bind(clear)
                .execute(&mut *tx)
                .await?;
        if sqlite {
            sqlx::query("PRAGMA secure_delete = OFF").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores an order and its new authorizations in one transaction (on PostgreSQL in one
    /// statement, the authorizations' `INSERT` inside `WITH`, as in `single_statement.rs`).
    pub async fn create_acme_order(&self, o: &Order, authzs: &[Authz]) -> Result<(), LedgerError> {
        if authzs.is_empty() || self.dialect == super::Dialect::Postgres {
            let sql = match authzs.len() {
                0 => ORDER_INSERT.to_owned(),
                n => format!("WITH authzs AS ({}) {ORDER_INSERT}", authz_insert(n, ORDER_PARAMETERS + 1)),
            };
            let query = bind_authzs(bind_order(sqlx::query(sqlx::AssertSqlSafe(sql)), o), authzs);
            let mut tx = self.begin_single().await?;
            query.execute(&mut *tx).await?;
            return Ok(tx.commit().await?);
        }
        let mut tx = self.begin().await?;
        let sql = authz_insert(authzs.len(), 1);
        bind_authzs(sqlx::query(sqlx::AssertSqlSafe(sql)), authzs).execute(&mut *tx).await?;
        bind_order(sqlx::query(ORDER_INSERT), o).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The order `id`.
    pub async fn acme_order(&self, id: &str) -> Result<Option<Order>, LedgerError> {
        Ok(self.acme_orders(&[id.to_owned()]).await?.pop().flatten())
    }

    /// The orders `ids` (answers in the same order; see [`Ledger::rows_by_key`]).
    pub async fn acme_orders(&self, ids: &[String]) -> Result<Vec<Option<Order>>, LedgerError> {
        self.rows_by_key(concat!("SELECT ", order_columns!(), " FROM acme_orders WHERE id IN "), "id", ids, order).await
    }

    /// Stores an order's status, error, certificate and approval.
    pub async fn update_acme_order(&self, o: &Order) -> Result<(), LedgerError> {
        let mut tx = self.begin_single().await?;
        sqlx::query(
            "UPDATE acme_orders SET status = $1, error = $2, certificate_serial = $3, approval_id = $4 WHERE id = $5",
        )
        .bind(o.status.as_str())
        .bind(o.error.as_ref().map(to_text))
        .bind(o.certificate_serial.clone())
        .bind(o.approval_id)
        .bind(&o.id)
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }

    /// Ids of an account's orders, newest first (at most 1000).
    pub async fn acme_account_orders(&self, account_id: &str) -> Result<Vec<String>, LedgerError> {
        let rows = sqlx::query("SELECT id FROM acme_orders WHERE account_id = $1 ORDER BY created_at DESC LIMIT 1000")
            .bind(account_id)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|r| r.try_get("id").map_err(LedgerError::from)).collect()
    }

    /// Whether a non-invalid order already replaces `serial`.
    pub async fn acme_replaced(&self, serial: &str) -> Result<bool, LedgerError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM acme_orders WHERE replaces_serial = $1 AND status <> 'invalid'")
                .bind(serial)
                .fetch_one(&mut *self.conn().await?)
                .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// The authorizations `ids` (answers in the same order; see [`Ledger::rows_by_key`]).
    pub async fn acme_authzs(&self, ids: &[String]) -> Result<Vec<Option<Authz>>, LedgerError> {
        self.rows_by_key(concat!("SELECT ", authz_columns!(), " FROM acme_authzs WHERE id IN "), "id", ids, authz).await
    }

    /// A valid, unexpired authorization of `account_id` for `identifier`.
    pub async fn acme_valid_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        wildcard: bool,
    ) -> Result<Option<Authz>, LedgerError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            authz_columns!(),
            " FROM acme_authzs WHERE account_id = $1 AND identifier_type = $2 AND identifier_value = $3 \
             AND wildcard = $4 AND status = 'valid' AND expires > $5 ORDER BY expires DESC LIMIT 1"
        ))
        .bind(account_id)
        .bind(&identifier.kind)
        .bind(&identifier.value)
        .bind(i16::from(wildcard))
        .bind(now() + 60)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        row.as_ref().map(authz).transpose()
    }

    /// Stores an authorization's status and challenges.
    pub async fn update_acme_authz(&self, a: &Authz) -> Result<(), LedgerError> {
        self.update_acme_authzs(std::slice::from_ref(a)).await
    }

    /// Stores the status and challenges of several distinct authorizations, one statement and
    /// commit for up to [`IDS_PER_STATEMENT`] of them. The list is padded with its last member
    /// to a power of two, as in [`Ledger::rows_by_key`].
    pub async fn update_acme_authzs(&self, authzs: &[Authz]) -> Result<(), LedgerError> {
        for chunk in authzs.chunks(IDS_PER_STATEMENT) {
            let (n, members) = by_key::padded(chunk);
            let values: Vec<String> =
                (0..n).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
            // The statement holds placeholders only; every value is bound.
            let sql = format!(
                "UPDATE acme_authzs SET status = v.column2, challenges = v.column3 FROM (VALUES {}) AS v \
                 WHERE acme_authzs.id = v.column1",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in members {
                query = query.bind(&a.id).bind(a.status.as_str()).bind(to_text(&a.challenges));
            }
            let mut tx = self.begin_single().await?;
            query.execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Deletes redeemed nonces past expiry, and orders and authorizations expired more than
    /// `retention_secs` ago (orders that produced a certificate are kept: they link it to its
    /// account).
    pub async fn acme_cleanup(&self, retention_secs: i64) -> Result<AcmeCleanup, LedgerError> {
        let mut tx = self.begin().await?;
        let now = now();
        let cutoff = now - retention_secs;
        let nonces = sqlx::query("DELETE FROM acme_nonces WHERE expires < $1").bind(now).execute(&mut *tx).await?;
        let orders = sqlx::query("DELETE FROM acme_orders WHERE expires < $1 AND certificate_serial IS NULL")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        let authzs = sqlx::query("DELETE FROM acme_authzs WHERE expires < $1").bind(cutoff).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(AcmeCleanup {
            nonces: nonces.rows_affected(),
            orders: orders.rows_affected(),
            authzs: authzs.rows_affected(),
        })
    }
}
