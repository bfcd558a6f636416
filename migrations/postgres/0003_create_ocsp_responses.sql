-- Pre-signed OCSP responses, one per certificate and CertID hash algorithm. The request path
-- reads these; a background job keeps them fresh and re-signs them when a revocation lands
-- (revocation_seq is the certificate's revocation sequence the response reflects).
CREATE TABLE ocsp_responses (
    serial          TEXT NOT NULL,
    hash_alg        TEXT NOT NULL,
    issuer_id       TEXT NOT NULL,
    revocation_seq  BIGINT NOT NULL,
    this_update     BIGINT NOT NULL,
    next_update     BIGINT NOT NULL,
    der             BYTEA NOT NULL,
    PRIMARY KEY (serial, hash_alg)
);
CREATE INDEX ocsp_responses_next_update ON ocsp_responses (next_update);
CREATE INDEX certificates_profile ON certificates (issuer_id, profile, not_after);
