//! Embedded migrations for both dialects, built without sqlx's macros.

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
];

/// Applies every migration of `dialect` that the database has not seen yet.
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
    Migrator::with_migrations(migrations).run(pool).await?;
    Ok(())
}
