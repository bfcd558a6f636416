-- When an operator flagged a certificate for early renewal (Unix seconds): ACME ARI then
-- suggests a renewal window starting at that moment.
ALTER TABLE certificates ADD COLUMN renew_early_at INTEGER;
