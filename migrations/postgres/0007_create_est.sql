-- EST HTTP Basic users, per label. The password is stored as an argon2id PHC string only.
CREATE TABLE est_users (
    label         TEXT NOT NULL,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (label, name)
);
