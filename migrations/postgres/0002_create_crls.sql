-- CRLs: numbers per issuer (shared by complete and delta CRLs, never reused), every CRL signed
-- (reserved before signing, like certificates), and a revocation sequence that orders
-- revocations in commit order so that a delta CRL lists exactly what changed since its base.
ALTER TABLE certificates ADD COLUMN revocation_seq BIGINT;
CREATE INDEX certificates_revocation_seq ON certificates (issuer_id, revocation_seq);

CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('revocation', 0);

CREATE TABLE crl_numbers (
    issuer_id    TEXT PRIMARY KEY,
    last_number  BIGINT NOT NULL
);

CREATE TABLE crls (
    issuer_id       TEXT NOT NULL,
    crl_number      BIGINT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
    base_number     BIGINT,
    revocation_seq  BIGINT NOT NULL,   -- revocations with seq <= this are reflected
    state           TEXT NOT NULL CHECK (state IN ('reserved', 'published', 'aborted')),
    entries         BIGINT,
    this_update     BIGINT NOT NULL,
    next_update     BIGINT NOT NULL,
    der             BYTEA,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, crl_number)
);
CREATE INDEX crls_latest ON crls (issuer_id, kind, state, crl_number);
