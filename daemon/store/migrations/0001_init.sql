-- 0001: the first schema. Times are unix nanoseconds (INTEGER) so that they sort and
-- compare as numbers and round-trip without a text format; NULL means "not yet".
-- Jobs are never deleted, so the foreign keys have no ON DELETE action: deleting a job
-- that has history fails instead of silently taking the history with it.

CREATE TABLE jobs (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL DEFAULT '',
    owner_uid     INTEGER NOT NULL,
    cluster       TEXT    NOT NULL DEFAULT '',
    state         TEXT    NOT NULL CHECK (state <> ''),
    scheduler_id  TEXT    NOT NULL DEFAULT '',
    sched_meta    TEXT    NOT NULL DEFAULT '',
    preset        TEXT    NOT NULL DEFAULT '',
    solvent       TEXT    NOT NULL DEFAULT '',
    charge        INTEGER NOT NULL DEFAULT 0,
    multiplicity  INTEGER NOT NULL DEFAULT 0,
    level         TEXT    NOT NULL DEFAULT '',
    software      TEXT    NOT NULL DEFAULT '',
    template_hash TEXT    NOT NULL DEFAULT '',
    input_format  TEXT    NOT NULL DEFAULT '',
    error         TEXT    NOT NULL DEFAULT '',
    exit_code     INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    submitted_at  INTEGER,
    started_at    INTEGER,
    ended_at      INTEGER
) STRICT;

CREATE INDEX jobs_owner_uid ON jobs (owner_uid);
CREATE INDEX jobs_state ON jobs (state);
CREATE INDEX jobs_cluster_state ON jobs (cluster, state);
-- Matches List's ORDER BY exactly, so a limited listing reads only the rows it returns.
CREATE INDEX jobs_created ON jobs (created_at DESC, id);

CREATE TABLE job_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     TEXT    NOT NULL REFERENCES jobs (id),
    at         INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX job_events_job ON job_events (job_id, id);

CREATE TABLE results (
    job_id TEXT NOT NULL PRIMARY KEY REFERENCES jobs (id),
    json   TEXT NOT NULL
) STRICT;
