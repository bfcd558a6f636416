-- Admin API and dashboard: local users with a role, TOTP secrets sealed by the token, API
-- tokens stored as SHA-256 hashes, dashboard sessions, failed-login throttling, and a second
-- approver on an approval.

-- role: admin | approver | operator | owner | auditor. `owner` names the CLM owner a user of
-- role `owner` acts for. totp_secret is sealed (`sealing::Purpose::TotpSecret`); totp_last_step
-- is the last accepted RFC 6238 time step (a code is never accepted twice).
CREATE TABLE admin_users (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL,
    owner          TEXT,
    password_hash  TEXT NOT NULL,
    totp_secret    TEXT,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    disabled_at    BIGINT,
    created_at     BIGINT NOT NULL
);

-- An API token is `pca_<id>_<secret>`; only SHA-256(secret) is kept. role may be `metrics`
-- (reads /metrics only). user_name is the user it was made for, if any.
CREATE TABLE admin_tokens (
    id           TEXT PRIMARY KEY,
    user_name    TEXT,
    role         TEXT NOT NULL,
    owner        TEXT,
    secret_hash  BLOB NOT NULL,
    note         TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);

-- Dashboard sessions: only SHA-256 of the cookie value is kept; csrf is the form token.
CREATE TABLE admin_sessions (
    id_hash    BLOB PRIMARY KEY,
    user_name  TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);

-- Failed logins, per user (`user:NAME`) and per address (`addr:IP`), for the rate limit.
CREATE TABLE admin_login_failures (
    subject TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX admin_login_failures_subject ON admin_login_failures (subject, at);

-- Approval decisions: one row per approver; an approval needing two approvers is approved by
-- the second distinct one.
CREATE TABLE approval_decisions (
    approval_id BIGINT NOT NULL,
    approver    TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason      TEXT,
    decided_at  BIGINT NOT NULL,
    PRIMARY KEY (approval_id, approver)
);
ALTER TABLE approvals ADD COLUMN approvals_required BIGINT NOT NULL DEFAULT 1;
