//! Embedded migrations for both dialects, built without sqlx's macros, and the rule that lets
//! binaries of two releases share one ledger during a rolling upgrade: every migration must
//! leave the ledger usable by the binary of the release before it (see `migrations/README.md`),
//! unless its description starts with [`BREAKING`]. A binary starts on a ledger that a newer one
//! migrated when every migration it does not know is compatible, and refuses to start when one
//! is breaking (every instance of the older release must be stopped before the newer one
//! applies it).

use std::borrow::Cow;

use sqlx::{
    migrate::{Migration, MigrationType, Migrator},
    AnyPool, SqlSafeStr,
};

use super::{Dialect, LedgerError};

const SQLITE: &[(i64, &str, &str)] = &[
    (1, "create ledger", include_str!("../../migrations/sqlite/0001_create_ledger.sql")),
    (2, "create crls", include_str!("../../migrations/sqlite/0002_create_crls.sql")),
    (3, "create ocsp responses", include_str!("../../migrations/sqlite/0003_create_ocsp_responses.sql")),
    (4, "add crl entries", include_str!("../../migrations/sqlite/0004_add_crl_entries.sql")),
    (5, "create acme", include_str!("../../migrations/sqlite/0005_create_acme.sql")),
    (6, "add renew early", include_str!("../../migrations/sqlite/0006_add_renew_early.sql")),
    (7, "create est", include_str!("../../migrations/sqlite/0007_create_est.sql")),
    (8, "create scep challenges", include_str!("../../migrations/sqlite/0008_create_scep_challenges.sql")),
    (9, "add ocsp sweep indexes", include_str!("../../migrations/sqlite/0009_add_ocsp_sweep_indexes.sql")),
    (
        10,
        "index reservations by requester",
        include_str!("../../migrations/sqlite/0010_index_reservations_by_requester.sql"),
    ),
    (11, "seal acme secrets", include_str!("../../migrations/sqlite/0011_seal_acme_secrets.sql")),
    (12, "create clm", include_str!("../../migrations/sqlite/0012_create_clm.sql")),
    (13, "create admin", include_str!("../../migrations/sqlite/0013_create_admin.sql")),
    (14, "index report periods", include_str!("../../migrations/sqlite/0014_index_report_periods.sql")),
    (
        15,
        "add one reservation per transaction",
        include_str!("../../migrations/sqlite/0015_add_one_reservation_per_transaction.sql"),
    ),
    (
        16,
        "index certificates by tier status",
        include_str!("../../migrations/sqlite/0016_index_certificates_by_tier_status.sql"),
    ),
    (17, "index renew early", include_str!("../../migrations/sqlite/0017_index_renew_early.sql")),
    (18, "create clm looks", include_str!("../../migrations/sqlite/0018_create_clm_looks.sql")),
    (19, "create job leases", include_str!("../../migrations/sqlite/0019_create_job_leases.sql")),
    (
        20,
        "index certificates by not before",
        include_str!("../../migrations/sqlite/0020_index_certificates_by_not_before.sql"),
    ),
    (21, "create scep challenge uses", include_str!("../../migrations/sqlite/0021_create_scep_challenge_uses.sql")),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "create ledger", include_str!("../../migrations/postgres/0001_create_ledger.sql")),
    (2, "create crls", include_str!("../../migrations/postgres/0002_create_crls.sql")),
    (3, "create ocsp responses", include_str!("../../migrations/postgres/0003_create_ocsp_responses.sql")),
    (4, "add crl entries", include_str!("../../migrations/postgres/0004_add_crl_entries.sql")),
    (5, "create acme", include_str!("../../migrations/postgres/0005_create_acme.sql")),
    (6, "add renew early", include_str!("../../migrations/postgres/0006_add_renew_early.sql")),
    (7, "create est", include_str!("../../migrations/postgres/0007_create_est.sql")),
    (8, "create scep challenges", include_str!("../../migrations/postgres/0008_create_scep_challenges.sql")),
    (9, "add ocsp sweep indexes", include_str!("../../migrations/postgres/0009_add_ocsp_sweep_indexes.sql")),
    (
        10,
        "index reservations by requester",
        include_str!("../../migrations/postgres/0010_index_reservations_by_requester.sql"),
    ),
    (11, "seal acme secrets", include_str!("../../migrations/postgres/0011_seal_acme_secrets.sql")),
    (12, "create clm", include_str!("../../migrations/postgres/0012_create_clm.sql")),
    (13, "create admin", include_str!("../../migrations/postgres/0013_create_admin.sql")),
    (14, "index report periods", include_str!("../../migrations/postgres/0014_index_report_periods.sql")),
    (
        15,
        "add one reservation per transaction",
        include_str!("../../migrations/postgres/0015_add_one_reservation_per_transaction.sql"),
    ),
    (
        16,
        "index certificates by tier status",
        include_str!("../../migrations/postgres/0016_index_certificates_by_tier_status.sql"),
    ),
    (17, "index renew early", include_str!("../../migrations/postgres/0017_index_renew_early.sql")),
    (18, "create clm looks", include_str!("../../migrations/postgres/0018_create_clm_looks.sql")),
    (19, "create job leases", include_str!("../../migrations/postgres/0019_create_job_leases.sql")),
    (
        20,
        "index certificates by not before",
        include_str!("../../migrations/postgres/0020_index_certificates_by_not_before.sql"),
    ),
    (21, "create scep challenge uses", include_str!("../../migrations/postgres/0021_create_scep_challenge_uses.sql")),
];

/// How the description of a migration that the previous release's binary cannot run on starts.
pub(super) const BREAKING: &str = "breaking: ";

/// Applies every migration of `dialect` that the database has not seen yet; refuses a ledger
/// that a newer binary migrated with a migration marked [`BREAKING`].
pub(super) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<(), LedgerError> {
    let set = match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    };
    let migrations = set
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(*version, Cow::Borrowed(*description), MigrationType::Simple, sql.into_sql_str(), false)
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    // Migrations a newer binary applied are checked below instead of refused outright.
    migrator.set_ignore_missing(true);
    migrator.run(pool).await?;
    let known = set.last().map_or(0, |(version, _, _)| *version);
    let newer: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, description FROM _sqlx_migrations WHERE version > $1 ORDER BY version")
            .bind(known)
            .fetch_all(pool)
            .await?;
    refuse_breaking(known, &newer)?;
    if let Some((version, _)) = newer.last() {
        tracing::info!(
            known,
            ledger = version,
            "the ledger was migrated by a newer privca; its migrations are compatible with this one"
        );
    }
    Ok(())
}

/// Refuses `newer` (version, description of the applied migrations this binary does not know,
/// whose newest is `known`) when one of them is marked [`BREAKING`].
fn refuse_breaking(known: i64, newer: &[(i64, String)]) -> Result<(), LedgerError> {
    match newer.iter().find(|(_, description)| description.starts_with(BREAKING)) {
        Some((version, description)) => Err(LedgerError::Incompatible(format!(
            "the ledger has migration {version} ({description}) of a newer privca, which this binary \
             (migrations up to {known}) cannot run on: run the newer release"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;

    /// A ledger migrated by a newer binary: `description` recorded as migration 10000.
    async fn newer_ledger(url: &str, description: &str) -> Result<Ledger, LedgerError> {
        let ledger = Ledger::connect(url, 2).await?;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (10000, $1, TRUE, $2, 0)",
        )
        .bind(description)
        .bind(vec![0u8; 48])
        .execute(&ledger.pool)
        .await?;
        ledger.close().await;
        Ledger::connect(url, 2).await
    }

    async fn compatible_accepted_breaking_refused(url_of: impl Fn(&str) -> String) {
        assert!(newer_ledger(&url_of("a"), "add a nullable column").await.is_ok());
        let Err(refused) = newer_ledger(&url_of("b"), "breaking: drop a column").await else {
            panic!("a ledger with a breaking migration this binary does not know was accepted");
        };
        assert!(matches!(&refused, LedgerError::Incompatible(m) if m.contains("10000 (breaking: drop a column)")));
    }

    #[tokio::test]
    async fn newer_ledgers_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        compatible_accepted_breaking_refused(|n| format!("sqlite://{}/{n}.db?mode=rwc", dir.path().display())).await;
    }

    #[tokio::test]
    async fn newer_ledgers_on_postgres() {
        let (Some(a), Some(b)) =
            (crate::ledger::test_db::TestPg::create().await, crate::ledger::test_db::TestPg::create().await)
        else {
            return;
        };
        compatible_accepted_breaking_refused(|n| if n == "a" { a.url.clone() } else { b.url.clone() }).await;
    }
}
