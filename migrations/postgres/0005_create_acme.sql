-- ACME objects (RFC 8555). Times are Unix seconds; JSON columns hold arrays/objects as text.
CREATE TABLE acme_accounts (
    id          TEXT PRIMARY KEY,
    thumbprint  TEXT NOT NULL UNIQUE,      -- RFC 7638 SHA-256 thumbprint of the account key
    jwk         TEXT NOT NULL,             -- public JWK (JSON)
    status      TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    contact     TEXT NOT NULL,             -- JSON array of mailto: URLs
    eab_kid     TEXT UNIQUE,               -- the external account key it was bound with
    eab         TEXT,                      -- the verified EAB JWS (JSON), reflected to the client
    owner       TEXT,                      -- CLM owner from the EAB key
    profile     TEXT,                      -- profile forced by the EAB key
    created_at  BIGINT NOT NULL
);

CREATE TABLE acme_eab_keys (
    kid         TEXT PRIMARY KEY,
    hmac_key    TEXT NOT NULL,             -- base64url; a shared MAC secret, not a signing key
    owner       TEXT NOT NULL,
    profile     TEXT,
    account_id  TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE acme_orders (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    expires             BIGINT NOT NULL,
    identifiers         TEXT NOT NULL,     -- JSON array of {type, value}
    profile             TEXT NOT NULL,
    replaces            TEXT,              -- RFC 9773 certID as sent
    replaces_serial     TEXT,
    authz_ids           TEXT NOT NULL,     -- JSON array
    error               TEXT,              -- problem document (JSON)
    certificate_serial  TEXT,
    approval_id         BIGINT,
    created_at          BIGINT NOT NULL
);
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at);
CREATE INDEX acme_orders_replaces ON acme_orders (replaces_serial);
CREATE INDEX acme_orders_expires ON acme_orders (expires);

CREATE TABLE acme_authzs (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL,
    identifier_type     TEXT NOT NULL,
    identifier_value    TEXT NOT NULL,
    wildcard            SMALLINT NOT NULL,
    status              TEXT NOT NULL,
    expires             BIGINT NOT NULL,
    challenges          TEXT NOT NULL      -- JSON array
);
CREATE INDEX acme_authzs_reuse ON acme_authzs (account_id, identifier_type, identifier_value, status);
CREATE INDEX acme_authzs_expires ON acme_authzs (expires);

-- Redeemed nonces; the primary key makes a second redemption fail on every instance.
CREATE TABLE acme_nonces (
    nonce       TEXT PRIMARY KEY,
    expires     BIGINT NOT NULL
);
CREATE INDEX acme_nonces_expires ON acme_nonces (expires);

-- Server-wide values shared by every instance (the nonce MAC key).
CREATE TABLE acme_settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
