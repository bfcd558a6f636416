//! Units of work for SCEP: one-time challenge passwords (and which transaction used each), and
//! finding a transaction again by its requester, `scep:<name>/<transactionID>`
//! ([`Ledger::transaction_record`]).

use sqlx::Row;

use super::{audit, now, Approval, CertRecord, Ledger, LedgerError};
use crate::audit::AuditEvent;

/// What the ledger holds for a transaction.
#[derive(Debug, Clone)]
pub enum TransactionRecord {
    /// Its newest certificate.
    Certificate(CertRecord),
    /// No certificate: its newest approval request.
    Approval(Approval),
}

/// What [`Ledger::use_scep_challenge`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeUse {
    /// Used now by this transaction; the owner the challenge names, if any.
    Used(Option<String>),
    /// Used earlier by this same transaction (another copy of it): nothing changed.
    UsedBefore(Option<String>),
    /// Unknown, for another profile, expired, or used up by other transactions.
    Refused,
}

/// The newest certificate and the newest approval of a requester (each NULL when none). The
/// certificate is found through its committed reservation (index `reservations_requester`),
/// which is what a new transaction's reservation checks too
/// (`Reservation::one_per_requester`).
const TRANSACTION_MARKERS: &str =
    "SELECT (SELECT serial FROM reservations WHERE requester = $1 AND state = 'committed' \
     ORDER BY created_at DESC LIMIT 1) AS serial, \
     (SELECT id FROM approvals WHERE requester = $1 ORDER BY id DESC LIMIT 1) AS approval_id";

impl Ledger {
    /// The newest certificate issued to `requester` (a SCEP transaction), else the newest
    /// approval it asked for. One statement finds both markers (a new transaction costs one
    /// read); the row found is then read by key.
    pub async fn transaction_record(&self, requester: &str) -> Result<Option<TransactionRecord>, LedgerError> {
        let (serial, approval_id): (Option<String>, Option<i64>) = match self.sqlite() {
            Some(kept) => kept
                .direct
                .read_row(TRANSACTION_MARKERS, &[requester.into()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .unwrap_or_default(),
            None => {
                let marks =
                    sqlx::query(TRANSACTION_MARKERS).bind(requester).fetch_one(&mut *self.reader().await?).await?;
                (marks.try_get("serial")?, marks.try_get("approval_id")?)
            }
        };
        if let Some(serial) = serial {
            if let Some(cert) = self.certificate(&serial).await? {
                return Ok(Some(TransactionRecord::Certificate(cert)));
            }
        }
        Ok(match approval_id {
            Some(id) => self.approval(id).await?.map(TransactionRecord::Approval),
            None => None,
        })
    }

    /// Stores a challenge (its SHA-256, hex) for `profile`, usable `uses` times until `expires_at`.
    pub async fn create_scep_challenge(
        &self,
        hash: &str,
        profile: &str,
        owner: Option<&str>,
        uses: i64,
        expires_at: i64,
        event: &AuditEvent,
    ) -> Result<(), LedgerError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO scep_challenges (challenge_hash, profile, owner, uses_left, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(hash)
        .bind(profile)
        .bind(owner.map(str::to_owned))
        .bind(uses)
        .bind(expires_at)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        audit::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses the challenge once for transaction `requester` (`scep:<name>/<transactionID>`) if
    /// it exists for `profile`, has uses left and has not expired, and records which
    /// transaction used it in the same unit of work. A challenge this very transaction used
    /// before (another copy of it, on this or another instance) is [`ChallengeUse::UsedBefore`]
    /// and is not used again; any other refusal is [`ChallengeUse::Refused`].
    ///
    /// Two copies racing: on PostgreSQL the loser's `UPDATE` waits for the winner's row lock,
    /// then finds no use left (or, for a challenge with uses left, the winner's use row, and
    /// gives its own use back by rolling back); its next statement sees the winner's committed
    /// use row. On SQLite the units of work take turns (`BEGIN IMMEDIATE`).
    pub async fn use_scep_challenge(
        &self,
        hash: &str,
        profile: &str,
        requester: &str,
    ) -> Result<ChallengeUse, LedgerError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE scep_challenges SET uses_left = uses_left - 1 \
             WHERE challenge_hash = $1 AND profile = $2 AND uses_left > 0 AND expires_at > $3 RETURNING owner",
        )
        .bind(hash)
        .bind(profile)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let before = sqlx::query(
                "SELECT c.owner FROM scep_challenge_uses u JOIN scep_challenges c ON c.challenge_hash = u.challenge_hash \
                 WHERE u.challenge_hash = $1 AND u.requester = $2 AND c.profile = $3",
            )
            .bind(hash)
            .bind(requester)
            .bind(profile)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(match before {
                Some(r) => ChallengeUse::UsedBefore(r.try_get("owner")?),
                None => ChallengeUse::Refused,
            });
        };
        let owner: Option<String> = row.try_get("owner")?;
        let recorded = sqlx::query(
            "INSERT INTO scep_challenge_uses (challenge_hash, requester, used_at) VALUES ($1, $2, $3) \
             ON CONFLICT (challenge_hash, requester) DO NOTHING RETURNING requester",
        )
        .bind(hash)
        .bind(requester)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        if recorded.is_none() {
            // A challenge with uses left that this transaction used before: dropping the unit
            // of work rolls the decrement back.
            drop(tx);
            return Ok(ChallengeUse::UsedBefore(owner));
        }
        tx.commit().await?;
        Ok(ChallengeUse::Used(owner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;

    async fn challenge(ledger: &Ledger, hash: &str, uses: i64) {
        let event = AuditEvent::new(AuditKind::ScepChallengeCreated, "admin:test");
        ledger.create_scep_challenge(hash, "device", Some("ops"), uses, now() + 3600, &event).await.unwrap();
    }

    /// Two copies of one transaction using one challenge at the same moment, twenty times:
    /// one uses it, the other finds it used by its own transaction; a third copy later finds
    /// the same; another transaction, or the same one under another profile, is refused.
    async fn a_transaction_racing_itself_uses_a_challenge_once(ledger: &Ledger) {
        let used = ChallengeUse::Used(Some("ops".into()));
        let before = ChallengeUse::UsedBefore(Some("ops".into()));
        for i in 0..20 {
            let (hash, tx) = (format!("once{i}"), format!("scep:default/tx{i}"));
            challenge(ledger, &hash, 1).await;
            let (a, b) = tokio::join!(
                ledger.use_scep_challenge(&hash, "device", &tx),
                ledger.use_scep_challenge(&hash, "device", &tx)
            );
            let mut got = [a.unwrap(), b.unwrap()];
            got.sort_by_key(|u| matches!(u, ChallengeUse::UsedBefore(_)));
            assert_eq!(got, [used.clone(), before.clone()], "round {i}");
            assert_eq!(ledger.use_scep_challenge(&hash, "device", &tx).await.unwrap(), before);
            let other = ledger.use_scep_challenge(&hash, "device", "scep:default/another").await.unwrap();
            assert_eq!(other, ChallengeUse::Refused, "round {i}: another transaction");
            let profile = ledger.use_scep_challenge(&hash, "tls-server", &tx).await.unwrap();
            assert_eq!(profile, ChallengeUse::Refused, "round {i}: another profile");
        }
        assert_eq!(
            ledger.use_scep_challenge("unknown", "device", "scep:default/tx0").await.unwrap(),
            ChallengeUse::Refused
        );
    }

    /// A challenge with two uses: two copies of one transaction use one of them, another
    /// transaction the other, and a third transaction is refused.
    async fn a_transaction_uses_a_challenge_with_uses_left_once(ledger: &Ledger) {
        challenge(ledger, "twice", 2).await;
        let (a, b) = tokio::join!(
            ledger.use_scep_challenge("twice", "device", "scep:default/t1"),
            ledger.use_scep_challenge("twice", "device", "scep:default/t1")
        );
        let mut got = [a.unwrap(), b.unwrap()];
        got.sort_by_key(|u| matches!(u, ChallengeUse::UsedBefore(_)));
        assert_eq!(got, [ChallengeUse::Used(Some("ops".into())), ChallengeUse::UsedBefore(Some("ops".into()))]);
        let left = ledger.scep_challenges().await.unwrap();
        assert_eq!(left.iter().map(|c| c.uses_left).collect::<Vec<_>>(), [1], "the copy gave its use back");
        let t2 = ledger.use_scep_challenge("twice", "device", "scep:default/t2").await.unwrap();
        assert_eq!(t2, ChallengeUse::Used(Some("ops".into())));
        let t3 = ledger.use_scep_challenge("twice", "device", "scep:default/t3").await.unwrap();
        assert_eq!(t3, ChallengeUse::Refused);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn challenge_uses_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::connect(&format!("sqlite://{}/l.db?mode=rwc", dir.path().display()), 4).await.unwrap();
        a_transaction_racing_itself_uses_a_challenge_once(&ledger).await;
        a_transaction_uses_a_challenge_with_uses_left_once(&ledger).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn challenge_uses_on_postgres() {
        let Some(db) = super::super::test_db::TestPg::create().await else { return };
        let ledger = Ledger::connect(&db.url, 4).await.unwrap();
        a_transaction_racing_itself_uses_a_challenge_once(&ledger).await;
        a_transaction_uses_a_challenge_with_uses_left_once(&ledger).await;
        ledger.close().await;
    }
}
