-- The dashboard's overview counts certificates by tier and derived status (revoked,
-- superseded, and the live ones by notAfter: expired, expiring, valid) as range counts on this
-- index alone, without reading a certificate row.
CREATE INDEX certificates_tier_status ON certificates (tier, status, superseded_by, not_after);
