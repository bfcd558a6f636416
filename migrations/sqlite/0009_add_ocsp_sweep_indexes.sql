-- The OCSP pre-signer's per-tick sweep reads only what changed: revocations after the last
-- sequence it handled, and certificates committed in the last minutes (`ocsp_recent_work`);
-- the full scan of live certificates runs every few minutes instead of every tick.
CREATE INDEX certificates_revocation ON certificates (revocation_seq);
CREATE INDEX certificates_created_at ON certificates (created_at);
