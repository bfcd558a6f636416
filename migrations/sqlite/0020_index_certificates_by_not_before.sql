-- The inventory sorted by issuance (`sort=issued_at`, newest first on the dashboard) is in
-- (not_before, not_after, fingerprint) order, either direction: these indexes serve it without
-- sorting the whole inventory.
CREATE INDEX certificates_not_before ON certificates (not_before, not_after, fingerprint_sha256);
CREATE INDEX external_certificates_not_before ON external_certificates (not_before, not_after, fingerprint_sha256);
