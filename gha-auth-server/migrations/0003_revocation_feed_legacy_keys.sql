-- Issue 5: the revocation feed and legacy API keys for token exchange. Portable as 0001.

-- The feed's sequence number (one row): bumped in the same transaction as every change to
-- `revocations`, so all replicas serve the same ETag for the same content.
CREATE TABLE revocation_seq (
    id  BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO revocation_seq (id, seq) VALUES (1, 0);

-- Pruning of entries whose tokens have all expired.
CREATE INDEX revocations_expiry ON revocations (expires_at);

-- Legacy static API keys an operator imported so their holders can exchange them (RFC 8693)
-- for short-lived tokens. Only the keyed hash (HMAC-SHA256 under the server pepper) is kept.
-- `client_id` is the only client that may exchange the key; the token's subject, tenant and
-- scopes (the most it can be narrowed from) come from this row.
CREATE TABLE legacy_api_keys (
    key_hash   TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    tenant     TEXT,
    scopes     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX legacy_api_keys_client ON legacy_api_keys (client_id);
