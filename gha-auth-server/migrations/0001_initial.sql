-- gha-auth schema, portable between SQLite and PostgreSQL (see docs/decisions/0002-store.md):
-- TEXT and BIGINT columns only, times as Unix seconds, booleans as 0/1, hashes as lower-case hex,
-- lists as space-separated TEXT. Access tokens are never stored.

-- OAuth clients. Secrets are kept only as keyed hashes (HMAC-SHA256 under the server pepper);
-- during a secret rotation the previous hash stays valid until prev_secret_expires_at.
CREATE TABLE clients (
    id                     TEXT PRIMARY KEY,
    tenant                 TEXT,
    grants                 TEXT NOT NULL,
    scopes                 TEXT NOT NULL,
    audiences              TEXT NOT NULL,
    token_lifetime_secs    BIGINT,
    first_party            BIGINT NOT NULL DEFAULT 0,
    public_client          BIGINT NOT NULL DEFAULT 0,
    jwk                    TEXT,
    secret_hash            TEXT,
    prev_secret_hash       TEXT,
    prev_secret_expires_at BIGINT,
    disabled               BIGINT NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);

-- Built-in users (issue 5 fills in the logic): Argon2id password hashes only.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL DEFAULT '',
    username      TEXT NOT NULL,
    roles         TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (tenant, username)
);

-- Refresh-token families and their tokens (keyed hashes only). Placeholder for issue 5.
CREATE TABLE refresh_families (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    user_id        TEXT,
    tenant         TEXT,
    scope          TEXT NOT NULL DEFAULT '',
    audience       TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);

CREATE TABLE refresh_tokens (
    token_hash     TEXT PRIMARY KEY,
    family_id      TEXT NOT NULL,
    parent_hash    TEXT,
    successor_hash TEXT,
    issued_at      BIGINT NOT NULL,
    used_at        BIGINT,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Revocations: a jti until its exp, or a not-before time per subject or per client.
CREATE TABLE revocations (
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);

-- Append-only, hash-chained audit log: hash = SHA-256(prev_hash || canonical row).
-- seq is assigned by the writer (previous seq + 1); the primary key makes concurrent writers
-- from several processes or replicas retry instead of forking the chain.
CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    subject   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

-- Versioned, encrypted key documents (signing-key set, pepper): the compare-and-set on version
-- is what lets exactly one replica perform each rotation.
CREATE TABLE key_state (
    name       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    document   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

-- private_key_jwt assertion ids seen, kept until the assertion expires (RFC 7523 §3 replay).
CREATE TABLE client_assertion_jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);
