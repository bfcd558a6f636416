-- SCEP transactions are found again through their reservation (requester
-- `scep:<name>/<transactionID>`, state `committed`): the reservation of a new transaction checks
-- in the same statement that none is committed yet, so the index belongs to the table written
-- first. It is set when the row is inserted, and leaves the commit's update a heap-only one.
CREATE INDEX reservations_requester ON reservations (requester);
DROP INDEX certificates_requester;
