-- One certificate per SCEP transaction as a constraint, not a read-then-write: a reservation
-- made with `one_per_requester` is flagged, and at most one flagged reservation per requester
-- is in flight or committed. An interrupted one (still `reserved` after ten minutes) is
-- aborted by `Ledger::abort_interrupted_reservations` (at start and periodically).
ALTER TABLE reservations ADD COLUMN one_per_requester BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX reservations_one_per_requester ON reservations (requester)
    WHERE one_per_requester = 1 AND state IN ('reserved', 'committed');
