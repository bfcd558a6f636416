-- Which SCEP transaction (requester `scep:<name>/<transactionID>`) used a one-time challenge,
-- written in the unit of work that uses it: a copy of the same transaction that finds the
-- challenge used up (its twin got there first, possibly on another instance) gets that
-- transaction's outcome instead of a refusal, and does not use the challenge again.
CREATE TABLE scep_challenge_uses (
    challenge_hash TEXT NOT NULL,
    requester      TEXT NOT NULL,
    used_at        BIGINT NOT NULL,
    PRIMARY KEY (challenge_hash, requester)
);
