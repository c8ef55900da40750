-- Issue 5: login backoff and refresh-token lookups. Portable as 0001 (TEXT and BIGINT only).

-- Failed logins, per user (kind 'user', subject '<tenant>/<username>') and per source address
-- (kind 'source', subject the IP). Kept for unknown users too, so the backoff says nothing about
-- which users exist. locked_until is Unix seconds; failures older than the reset window are
-- forgotten on the next failure.
CREATE TABLE login_failures (
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);

-- Families of one user (revocation of every family of a disabled user).
CREATE INDEX refresh_families_user ON refresh_families (user_id);
