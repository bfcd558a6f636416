-- Compliance reports count revocations and notifications of a period: these indexes serve the
-- range on their time columns (most certificates are never revoked: the index holds only those
-- that are).
CREATE INDEX certificates_revoked_at ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX clm_outbox_created_at ON clm_outbox (created_at);
CREATE INDEX approvals_created_at ON approvals (created_at);
