-- The process registry (spec/processes.md). A record is canonical JSON text
-- (lash_store_api.backend.process_codec), never jsonb; the columns beside it
-- are what listing, deletion and appends filter or lock on. An append locks
-- its process row FOR UPDATE and takes last_sequence + 1, so sequences are
-- gap-free and unique under any concurrency.
CREATE TABLE {s}.processes (
    process_id          text PRIMARY KEY,
    state               text NOT NULL,      -- running | completed | failed | cancelled
    waiting             boolean NOT NULL,
    wake_target_session text,               -- the session of record.wake_target
    last_sequence       bigint NOT NULL DEFAULT 0,
    record              text NOT NULL
);

CREATE INDEX processes_state ON {s}.processes (state, process_id);
CREATE INDEX processes_wake_target ON {s}.processes (wake_target_session)
    WHERE wake_target_session IS NOT NULL;

-- One row per event; a replay key names one event of its process.
CREATE TABLE {s}.process_events (
    process_id   text NOT NULL REFERENCES {s}.processes ON DELETE CASCADE,
    sequence     bigint NOT NULL,
    event_type   text NOT NULL,
    payload_hash text NOT NULL,
    replay_key   text,
    has_wake     boolean NOT NULL,
    event        text NOT NULL,
    PRIMARY KEY (process_id, sequence)
);

CREATE UNIQUE INDEX process_events_replay_key ON {s}.process_events (process_id, replay_key)
    WHERE replay_key IS NOT NULL;
CREATE INDEX process_events_type ON {s}.process_events (process_id, event_type, sequence);

-- Acks accept any sequence, so they reference the process, not the event.
CREATE TABLE {s}.process_wake_acks (
    process_id text NOT NULL REFERENCES {s}.processes ON DELETE CASCADE,
    sequence   bigint NOT NULL,
    PRIMARY KEY (process_id, sequence)
);

-- scope_id is "session:" + session id, or that + "/frame:" + frame id;
-- session_id is the session it names.
CREATE TABLE {s}.process_grants (
    scope_id   text NOT NULL,
    process_id text NOT NULL REFERENCES {s}.processes ON DELETE CASCADE,
    session_id text NOT NULL,
    kind       text,
    label      text,
    PRIMARY KEY (scope_id, process_id)
);

CREATE INDEX process_grants_session ON {s}.process_grants (session_id);
CREATE INDEX process_grants_process ON {s}.process_grants (process_id, session_id, scope_id);

-- One lease row per process; a release clears owner and token and keeps the
-- fencing counter, which only grows.
CREATE TABLE {s}.process_leases (
    process_id    text PRIMARY KEY REFERENCES {s}.processes ON DELETE CASCADE,
    fencing_token bigint NOT NULL,
    owner_id      text,
    lease_token   text,
    claimed_at_ms bigint NOT NULL,
    expires_at_ms bigint NOT NULL
);
