-- One-time SCEP challenge passwords (`privca scep challenge new`): only a SHA-256 of the
-- challenge is stored; each use decrements uses_left, and expired rows are refused.
CREATE TABLE scep_challenges (
    challenge_hash TEXT PRIMARY KEY,
    profile        TEXT NOT NULL,
    owner          TEXT,
    uses_left      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
-- SCEP transactions are found again by requester (`scep:<name>/<transactionID>`).
CREATE INDEX certificates_requester ON certificates (requester);
CREATE INDEX approvals_requester ON approvals (requester);
