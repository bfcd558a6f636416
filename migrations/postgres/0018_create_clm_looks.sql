-- When the policy job looks at a certificate next (privca's or an external one, by
-- fingerprint), in a narrow table of its own: recording a decision writes a short row here
-- instead of rewriting the certificate's row (and, on PostgreSQL, every index of it).
CREATE TABLE clm_looks (
    fingerprint     TEXT PRIMARY KEY,
    next_at         BIGINT NOT NULL
);
INSERT INTO clm_looks (fingerprint, next_at)
    SELECT fingerprint_sha256, clm_next_at FROM certificates WHERE clm_next_at IS NOT NULL;
INSERT INTO clm_looks (fingerprint, next_at)
    SELECT fingerprint_sha256, clm_next_at FROM external_certificates WHERE clm_next_at IS NOT NULL
    ON CONFLICT (fingerprint) DO NOTHING;
ALTER TABLE certificates DROP COLUMN clm_next_at;
ALTER TABLE external_certificates DROP COLUMN clm_next_at;
