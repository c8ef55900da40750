-- Issue 7: link-key state when Vault is not configured. One versioned document per integration
-- (CURRENT / PENDING / PREVIOUS keys and the rotation in progress), sealed with the master key
-- like key_state; the compare-and-set on version is what makes exactly one replica take each
-- rotation step. Portable as 0001 (TEXT and BIGINT only).
CREATE TABLE link_key_state (
    name       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    document   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
