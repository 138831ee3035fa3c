-- The session facet, blobs and attachments.
-- Every per-session table leads its key with session_id, so a distributed
-- Postgres can shard it by session. {s} is the storage's schema.

CREATE TABLE {s}.heads (
    session_id             text PRIMARY KEY,
    head_revision          bigint NOT NULL CHECK (head_revision > 0),
    config                 text NOT NULL,
    agent_frames           bytea NOT NULL,
    current_agent_frame_id text NOT NULL,
    checkpoint_ref         text NOT NULL,
    leaf_node_id           text,
    graph_node_count       bigint NOT NULL,
    updated_at             timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);  -- room for HOT updates: the head is rewritten by every commit

-- One row per node id; (rev, ord) is the insertion sequence: the revision
-- that first stored the id and its position in that commit.
CREATE TABLE {s}.nodes (
    session_id     text NOT NULL,
    node_id        text NOT NULL,
    rev            bigint NOT NULL,
    ord            integer NOT NULL,
    parent_node_id text,
    tombstoned     boolean NOT NULL DEFAULT false,
    data           bytea NOT NULL,
    PRIMARY KEY (session_id, node_id)
);

-- Usage deltas, verbatim and in order; counters are integers so SQL can sum them.
CREATE TABLE {s}.usage (
    session_id          text NOT NULL,
    rev                 bigint NOT NULL,
    ord                 integer NOT NULL,
    source              text NOT NULL,
    model               text NOT NULL,
    input_tokens        bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    cached_input_tokens bigint NOT NULL,
    reasoning_tokens    bigint NOT NULL,
    PRIMARY KEY (session_id, rev, ord)
);

-- A stamped commit's result; the manifest is re-read from its checkpoint blob.
CREATE TABLE {s}.turn_stamps (
    session_id       text NOT NULL,
    turn_id          text NOT NULL,
    turn_commit_hash text NOT NULL,
    head_revision    bigint NOT NULL,
    checkpoint_ref   text NOT NULL,
    PRIMARY KEY (session_id, turn_id)
);

CREATE TABLE {s}.session_meta (
    session_id text PRIMARY KEY,
    meta       text NOT NULL
);

-- Content-addressed and shared by every session.
CREATE TABLE {s}.blobs (
    ref        text PRIMARY KEY,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {s}.attachment_manifest (
    attachment_id   text PRIMARY KEY,
    session_id      text NOT NULL,
    canonical_uri   text NOT NULL,
    intent_at_ms    bigint NOT NULL,
    committed_at_ms bigint
);
CREATE INDEX attachment_manifest_uncommitted
    ON {s}.attachment_manifest (session_id, intent_at_ms)
    WHERE committed_at_ms IS NULL;

CREATE TABLE {s}.attachments (
    attachment_id text PRIMARY KEY,
    meta          text NOT NULL,
    data          bytea NOT NULL
);
