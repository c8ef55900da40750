-- Issue 6: the secrets broker's local store, used when Vault is not configured. One row per
-- secret path: its fields as one JSON document sealed with the master key (AES-256-GCM, the path
-- bound in as associated data), and a version that increases with every write. Writes are
-- compare-and-set on the version, like link_key_state. Portable as 0001 (TEXT and BIGINT only).
CREATE TABLE broker_secrets (
    path       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    document   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
