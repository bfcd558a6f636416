//! `LedgerError`: what a unit of work can report. Driver errors are classified here (the
//! atuin mapping: row-not-found → `NotFound`, unique violations → `Conflict`, connection
//! trouble → `Unavailable`) and never leak SQL text to clients.

/// A ledger failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness or state precondition failed (duplicate serial, already decided).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or the operation failed in the driver.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The TLS handshake with PostgreSQL failed: the server's certificate is not trusted or not
    /// for its host name, or the server does not offer TLS.
    #[error("TLS to PostgreSQL failed (sslmode={mode}, trusting {roots}): {source}")]
    Tls {
        /// The `sslmode` in force.
        mode: &'static str,
        /// The roots the server's certificate was checked against.
        roots: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The ledger was migrated by a newer privca in a way this binary cannot run on.
    #[error("incompatible ledger: {0}")]
    Incompatible(String),
    /// Stored data does not decode (bad enum value, schema drift).
    #[error("corrupt ledger data: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => LedgerError::NotFound("row".into()),
            sqlx::Error::Database(db) if db.is_unique_violation() => LedgerError::Conflict(db.message().to_owned()),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::ColumnNotFound(_) => {
                LedgerError::Corrupt(e.to_string())
            }
            _ => {
                super::note_fault(&e);
                LedgerError::Unavailable(e)
            }
        }
    }
}

impl From<sqlx::migrate::MigrateError> for LedgerError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        LedgerError::Unavailable(sqlx::Error::Migrate(Box::new(e)))
    }
}
