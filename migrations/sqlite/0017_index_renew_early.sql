-- The certificates flagged for early renewal, for the policy job's look at those that expire
-- after its notice window (a renewal that does not come is told to the owner).
CREATE INDEX certificates_renew_early ON certificates (renew_early_at) WHERE renew_early_at IS NOT NULL;
