-- Certificate lifecycle management on the ledger (src/clm). Times are Unix seconds.

-- Owners are records: a person or a team with its contacts. Certificates name their owner by
-- `name`; a name with no row here is an owner still to be claimed (listed as unowned).
CREATE TABLE owners (
    name            TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('person', 'team')),
    display_name    TEXT,
    email           TEXT,
    webhook         TEXT,
    webhook_format  TEXT NOT NULL DEFAULT 'json' CHECK (webhook_format IN ('json', 'slack', 'teams')),
    phone           TEXT,
    escalation      TEXT,              -- the owner (name) escalations go to, if not the security lead
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Inventory fields of privca's own certificates that can change after issuance. NULL
-- renewal_method means "the source's" (acme client, est device, scep device, manual).
ALTER TABLE certificates ADD COLUMN application TEXT;
ALTER TABLE certificates ADD COLUMN renewal_method TEXT;
ALTER TABLE certificates ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';  -- JSON array of strings
-- The certificate that replaced this one (found by the policy job once the certificate is inside
-- its tier's notice window), and when the policy job has
-- to look at this certificate again (the next threshold's time; NULL = not evaluated yet).
ALTER TABLE certificates ADD COLUMN superseded_by TEXT;
ALTER TABLE certificates ADD COLUMN clm_next_at BIGINT;
-- Partial: most certificates renew nothing, and an index full of NULLs looks useless to
-- the planner once the table is analysed.
CREATE INDEX certificates_renews ON certificates (renews_serial) WHERE renews_serial IS NOT NULL;
CREATE INDEX certificates_sans ON certificates (sans, not_before);
-- The inventory lists and the policy job's pages are in (not_after, fingerprint) order: these
-- indexes serve them without sorting (they replace those on not_after and on owner alone).
DROP INDEX certificates_not_after;
CREATE INDEX certificates_not_after_fp ON certificates (not_after, fingerprint_sha256);
CREATE INDEX certificates_tier_not_after ON certificates (tier, not_after, fingerprint_sha256);
DROP INDEX certificates_owner;
CREATE INDEX certificates_owner ON certificates (owner, not_after, fingerprint_sha256);

-- Certificates privca did not issue: imported from files or found by discovery scans.
CREATE TABLE external_certificates (
    fingerprint_sha256  TEXT PRIMARY KEY,
    source              TEXT NOT NULL CHECK (source IN ('import', 'discovery')),
    subject             TEXT NOT NULL,
    issuer              TEXT NOT NULL,
    serial              TEXT NOT NULL,
    sans                TEXT NOT NULL,     -- JSON array, as in certificates
    key_type            TEXT NOT NULL,     -- e.g. rsa-2048, ec-p256, ed25519
    signature_algorithm TEXT NOT NULL,
    not_before          BIGINT NOT NULL,
    not_after           BIGINT NOT NULL,
    owner               TEXT NOT NULL,
    tier                TEXT NOT NULL,
    application         TEXT,
    renewal_method      TEXT,
    tags                TEXT NOT NULL DEFAULT '[]',
    der                 BYTEA NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX external_certificates_not_after ON external_certificates (not_after, fingerprint_sha256);
CREATE INDEX external_certificates_tier ON external_certificates (tier, not_after, fingerprint_sha256);
CREATE INDEX external_certificates_owner ON external_certificates (owner, not_after, fingerprint_sha256);

-- Where a certificate was seen served: one row per endpoint, with what it serves now.
CREATE TABLE endpoints (
    host                TEXT NOT NULL,
    port                BIGINT NOT NULL,
    sni                 TEXT NOT NULL DEFAULT '',
    fingerprint_sha256  TEXT NOT NULL,     -- the leaf served at the last scan
    chain               TEXT NOT NULL,     -- JSON array of the served chain's fingerprints
    tls_version         TEXT,
    findings            TEXT NOT NULL DEFAULT '[]',  -- JSON array of finding names
    first_seen          BIGINT NOT NULL,   -- this leaf, at this endpoint
    last_seen           BIGINT NOT NULL,
    deployed_at         BIGINT,            -- first scan that saw this leaf here
    PRIMARY KEY (host, port, sni)
);
CREATE INDEX endpoints_fingerprint ON endpoints (fingerprint_sha256);

-- The notification outbox: each decision of the policy job (certificate x event x channel)
-- is one row, written in the same unit of work as the decision; `dedup_key` makes a second
-- decision of the same thing a no-op across restarts. Delivery moves `state` on.
CREATE TABLE clm_outbox (
    id              BIGSERIAL PRIMARY KEY,
    dedup_key       TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    fingerprint     TEXT,
    owner           TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX clm_outbox_due ON clm_outbox (state, next_attempt_at);

-- Acknowledgements and mutes: no expiry notices for the certificate until `until`.
CREATE TABLE clm_mutes (
    fingerprint     TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('ack', 'mute')),
    until_at        BIGINT NOT NULL,
    reason          TEXT NOT NULL,
    by_actor        TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- When the policy job has to look at an external certificate again (as for certificates).
ALTER TABLE external_certificates ADD COLUMN clm_next_at BIGINT;

-- Small CLM state: the last audit row turned into notifications (issued, revoked, approval
-- pending).
CREATE TABLE clm_state (
    name    TEXT PRIMARY KEY,
    value   BIGINT NOT NULL
);

-- Deployment checks: after a renewal, each endpoint recorded for the predecessor (or the
-- successor) is scanned and judged (src/clm/deploy): the successor served, the chain
-- complete, the name covered, OCSP good. One row per check; `failures` names what failed.
CREATE TABLE deployment_checks (
    id              BIGSERIAL PRIMARY KEY,
    fingerprint         TEXT NOT NULL,     -- the successor expected at the endpoint
    serial              TEXT NOT NULL,     -- the successor's serial
    predecessor_serial  TEXT NOT NULL,
    host                TEXT NOT NULL,
    port                BIGINT NOT NULL,
    sni                 TEXT NOT NULL DEFAULT '',
    checked_at          BIGINT NOT NULL,
    ok                  BIGINT NOT NULL,   -- 1 when every check passed
    served_fingerprint  TEXT,              -- the leaf served (NULL: nothing could be read)
    failures            TEXT NOT NULL DEFAULT '[]'  -- JSON array of {check, detail}
);
CREATE INDEX deployment_checks_fingerprint ON deployment_checks (fingerprint, host, port, sni, checked_at);
