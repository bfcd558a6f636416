-- ACME secrets are sealed by the token (AES-256-GCM under `privca-secrets-wrap`, see
-- src/sealing.rs) before they reach the ledger.
-- EAB HMAC keys: the sealed value goes in `sealed_key`. Keys stored in the clear before this
-- migration are sealed by privca at start-up, which then empties `hmac_key` (kept, always '',
-- so that no version of the table needs a rebuild).
ALTER TABLE acme_eab_keys ADD COLUMN sealed_key TEXT;
-- The shared nonce MAC key was stored in the clear: drop it. privca creates a sealed one
-- (`nonce_key_sealed`) on start; nonces handed out under the old key get `badNonce` and the
-- client retries with a fresh one (RFC 8555 §6.5).
DELETE FROM acme_settings WHERE name = 'nonce_key';
