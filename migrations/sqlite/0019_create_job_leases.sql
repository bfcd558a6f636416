-- Which instance runs each cluster-wide background job (jobs::lease): the holder, until when
-- (Unix seconds of the holder's clock), and a fencing number that grows with every change of
-- holder.
CREATE TABLE job_leases (
    job             TEXT PRIMARY KEY,
    holder          TEXT NOT NULL,
    fence           BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
