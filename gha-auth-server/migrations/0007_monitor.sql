-- The health board (`monitor/`). Portable as 0001 (TEXT and BIGINT only, times in Unix
-- milliseconds here, since checks run seconds apart).
--
-- monitor_lease: one row; the replica named in `holder` polls until `expires_at`. Taken, renewed
-- and taken over by compare-and-set on `version`, so exactly one replica polls at a time.
CREATE TABLE monitor_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    version    BIGINT NOT NULL
);

-- monitor_state: each target's debounced state (up, degraded, down, unknown), the streak of
-- equal results that moves it, when it is next due, and its last failure. Written by the lease
-- holder with compare-and-set on `version`: a state change is alerted by the writer that wins.
CREATE TABLE monitor_state (
    target              TEXT PRIMARY KEY,
    state               TEXT NOT NULL,
    streak_outcome      TEXT NOT NULL,
    streak              BIGINT NOT NULL,
    changed_at          BIGINT NOT NULL,
    checked_at          BIGINT NOT NULL,
    next_due            BIGINT NOT NULL,
    latency_ms          BIGINT NOT NULL,
    last_failure_at     BIGINT,
    last_failure_reason TEXT,
    version             BIGINT NOT NULL
);

-- monitor_results: every check, kept for monitor.retention and at most
-- monitor.max_results_per_target rows per target.
CREATE TABLE monitor_results (
    target     TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    outcome    TEXT NOT NULL,
    latency_ms BIGINT NOT NULL,
    reason     TEXT
);
CREATE INDEX monitor_results_target_time ON monitor_results (target, checked_at);
