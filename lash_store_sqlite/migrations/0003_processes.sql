-- The process registry (spec/processes.md). Records and events are the
-- canonical JSON text of lash_store_api.backend.process_codec; the columns
-- beside them are what listings, deletion and appends filter on. An append
-- runs in a write transaction (one writer at a time) and takes the largest
-- stored sequence + 1, so sequences are gap-free and unique.

CREATE TABLE processes (
    process_id          text PRIMARY KEY,
    state               text NOT NULL,
    waiting             integer NOT NULL,
    wake_target_session text,
    record              text NOT NULL
) WITHOUT ROWID;
CREATE INDEX processes_by_state ON processes (state, process_id);
CREATE INDEX processes_by_wake_target ON processes (wake_target_session)
    WHERE wake_target_session IS NOT NULL;

-- One row per event; a replay key names at most one event of its process.
CREATE TABLE process_events (
    process_id   text NOT NULL,
    sequence     integer NOT NULL,
    event_type   text NOT NULL,
    payload_hash text NOT NULL,
    replay_key   text,
    has_wake     integer NOT NULL,
    event        text NOT NULL,
    PRIMARY KEY (process_id, sequence)
) WITHOUT ROWID;
CREATE UNIQUE INDEX process_events_by_replay_key ON process_events (process_id, replay_key)
    WHERE replay_key IS NOT NULL;
CREATE INDEX process_events_by_type ON process_events (process_id, event_type, sequence);

-- Acks accept any sequence, stored or not.
CREATE TABLE process_wake_acks (
    process_id text NOT NULL,
    sequence   integer NOT NULL,
    PRIMARY KEY (process_id, sequence)
) WITHOUT ROWID;

-- scope_id is "session:" + session id, optionally + "/frame:" + frame id;
-- session_id is the session it names.
CREATE TABLE process_grants (
    scope_id   text NOT NULL,
    process_id text NOT NULL,
    session_id text NOT NULL,
    kind       text,
    label      text,
    PRIMARY KEY (scope_id, process_id)
) WITHOUT ROWID;
CREATE INDEX process_grants_by_session ON process_grants (session_id);
CREATE INDEX process_grants_by_process ON process_grants (process_id, session_id, scope_id);

-- One lease row per process; a release clears owner and token and keeps the
-- fencing counter, which only grows.
CREATE TABLE process_leases (
    process_id    text PRIMARY KEY,
    fencing_token integer NOT NULL,
    owner_id      text,
    lease_token   text,
    claimed_at_ms integer NOT NULL,
    expires_at_ms integer NOT NULL
) WITHOUT ROWID;
