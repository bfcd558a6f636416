-- The DER of each revoked certificate's CRL entry, computed once at revocation, so that a complete
-- CRL is a concatenation the database can hand over in a few large chunks.
ALTER TABLE certificates ADD COLUMN crl_entry BLOB;
