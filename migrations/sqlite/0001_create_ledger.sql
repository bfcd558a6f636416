-- privca ledger, SQLite dialect. Times are Unix seconds (BIGINT); serials are lowercase hex.
CREATE TABLE ca_certificates (
    id          TEXT PRIMARY KEY,          -- 'root' or an issuer id
    key_label   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    der         BLOB NOT NULL,
    chain_pem   TEXT NOT NULL,             -- certificates above it, PEM, nearest first
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE reservations (
    serial      TEXT PRIMARY KEY,
    issuer_id   TEXT NOT NULL,
    profile     TEXT NOT NULL,
    requester   TEXT NOT NULL,
    tbs_sha256  TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'aborted')),
    failure     TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE certificates (
    serial              TEXT PRIMARY KEY REFERENCES reservations (serial),
    issuer_id           TEXT NOT NULL,
    subject             TEXT NOT NULL,
    sans                TEXT NOT NULL,     -- JSON array of "dns:..", "ip:..", "email:..", "uri:.."
    fingerprint_sha256  TEXT NOT NULL UNIQUE,
    not_before          BIGINT NOT NULL,
    not_after           BIGINT NOT NULL,
    profile             TEXT NOT NULL,
    requester           TEXT NOT NULL,
    owner               TEXT NOT NULL,
    tier                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
    revocation_reason   TEXT,
    revoked_at          BIGINT,
    invalidity_date     BIGINT,
    renews_serial       TEXT,
    der                 BLOB NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_owner ON certificates (owner);
CREATE INDEX certificates_issuer_status ON certificates (issuer_id, status);

CREATE TABLE approvals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    profile     TEXT NOT NULL,
    requester   TEXT NOT NULL,
    owner       TEXT,
    subject     TEXT NOT NULL,
    sans        TEXT NOT NULL,
    csr_der     BLOB NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
    reason      TEXT,
    decided_by  TEXT,
    serial      TEXT,
    created_at  BIGINT NOT NULL,
    decided_at  BIGINT
);

-- Append-only audit log. Rows are inserted unsealed (seq NULL) in the transaction of the change
-- they record; the sealer links them into the hash chain in batches and signs a checkpoint.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at BIGINT NOT NULL,
    event       TEXT NOT NULL,
    actor       TEXT NOT NULL,
    serial      TEXT,
    profile     TEXT,
    issuer_id   TEXT,
    detail      TEXT NOT NULL,
    seq         BIGINT UNIQUE,
    prev_hash   TEXT,
    hash        TEXT
);
CREATE INDEX audit_events_unsealed ON audit_events (seq, id);
CREATE INDEX audit_events_serial ON audit_events (serial);

CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoints (
    seq         BIGINT PRIMARY KEY,
    head_hash   TEXT NOT NULL,
    signed_at   BIGINT NOT NULL,
    key_label   TEXT NOT NULL,
    signature   BLOB NOT NULL
);
