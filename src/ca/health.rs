//! What `/healthz` (on every listener) and the admin API's `/health` report: each dependency
//! privca needs to issue, up or down, so that an operator or a load balancer sees which one
//! failed. The ledger answers a `SELECT 1` (and on SQLite its file system has room for a
//! commit); the HSM signs a probe with an issuing key (at most one signature a second, see
//! [`crate::signer::SigningService::probe`]). Causes are logged, never sent: the answer names
//! only the dependency and a category.

use std::time::Duration;

use super::CertificateAuthority;

/// Free bytes under which the SQLite ledger's file system counts as full: a commit appends a
/// few pages to the write-ahead log, and one that finds no room fails.
pub const LOW_SPACE: u64 = 1 << 20;

/// How long the ledger may take to answer the check: a load balancer's health check needs its
/// answer within its own timeout (a second or two), not after the pool's wait for a connection.
const LEDGER_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of one dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It answers.
    Up,
    /// It does not answer (or fails).
    Down,
    /// SQLite only: it answers, but the file system holding it has no room for a commit.
    DiskFull,
}

impl Status {
    /// The word `/healthz` prints.
    pub fn name(self) -> &'static str {
        match self {
            Status::Up => "ok",
            Status::Down => "down",
            Status::DiskFull => "disk full",
        }
    }

    /// Whether requests needing it can succeed.
    pub fn is_up(self) -> bool {
        self == Status::Up
    }
}

/// Every dependency's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The ledger database.
    pub ledger: Status,
    /// The HSM (the PKCS#11 token).
    pub hsm: Status,
}

impl Health {
    /// Whether everything is up.
    pub fn is_up(&self) -> bool {
        self.ledger.is_up() && self.hsm.is_up()
    }

    /// The `/healthz` body: `ok`, or `unavailable: <dependencies>`, then one line per
    /// dependency (`ledger: ok`, `hsm: down`, …).
    pub fn text(&self) -> String {
        let down: Vec<&str> =
            [("ledger", self.ledger), ("hsm", self.hsm)].iter().filter(|(_, s)| !s.is_up()).map(|(n, _)| *n).collect();
        let head = if down.is_empty() { "ok".to_owned() } else { format!("unavailable: {}", down.join(", ")) };
        format!("{head}\nledger: {}\nhsm: {}\n", self.ledger.name(), self.hsm.name())
    }
}

impl CertificateAuthority {
    /// Checks the ledger and the HSM (concurrently).
    pub async fn health(&self) -> Health {
        let (ledger, hsm) = tokio::join!(self.ledger_health(), self.hsm_health());
        Health { ledger, hsm }
    }

    async fn ledger_health(&self) -> Status {
        match tokio::time::timeout(LEDGER_TIMEOUT, self.ledger().ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "health check: the ledger is unavailable");
                return Status::Down;
            }
            Err(_) => {
                tracing::error!("health check: the ledger did not answer within {LEDGER_TIMEOUT:?}");
                return Status::Down;
            }
        }
        match self.ledger().free_space() {
            Some(free) if free < LOW_SPACE => {
                tracing::error!(free, "health check: the SQLite ledger's file system is full");
                Status::DiskFull
            }
            _ => Status::Up,
        }
    }

    /// A probe signature with the first issuer's key (the root's when there is no issuer).
    async fn hsm_health(&self) -> Status {
        let Some(issuer) = self.issuers().next().or(self.root()) else { return Status::Up };
        match self.signing().probe(&issuer.key_label, issuer.signature).await {
            true => Status::Up,
            false => Status::Down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_what_is_down() {
        let up = Health { ledger: Status::Up, hsm: Status::Up };
        assert!(up.is_up());
        assert_eq!(up.text(), "ok\nledger: ok\nhsm: ok\n");
        let hsm = Health { ledger: Status::Up, hsm: Status::Down };
        assert!(!hsm.is_up());
        assert_eq!(hsm.text(), "unavailable: hsm\nledger: ok\nhsm: down\n");
        let both = Health { ledger: Status::DiskFull, hsm: Status::Down };
        assert_eq!(both.text(), "unavailable: ledger, hsm\nledger: disk full\nhsm: down\n");
    }
}
