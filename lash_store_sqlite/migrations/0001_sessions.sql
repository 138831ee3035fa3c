-- Sessions, maintenance and attachments. Text compares as bytes (UTF-8), which
-- is code point order: Python's, so listings page in the order the kit expects.
-- Tables are keyed by how they are read and written, so that a commit dirties
-- few pages: rows are appended where they can be, and a random key (a node id
-- a caller chose, a content hash) costs only a small index entry. Tables of
-- large rows (nodes, blobs, attachments) are rowid tables: a WITHOUT ROWID
-- row over about a kilobyte spills into overflow pages, one more page each.

CREATE TABLE heads (
    session_id             text PRIMARY KEY,
    head_revision          integer NOT NULL CHECK (head_revision > 0),
    config                 text NOT NULL,
    agent_frames           blob NOT NULL,
    current_agent_frame_id text NOT NULL,
    checkpoint_ref         text NOT NULL,
    leaf_node_id           text,
    graph_node_count       integer NOT NULL,
    created_at_ms          integer NOT NULL,
    updated_at_ms          integer NOT NULL
) WITHOUT ROWID;

-- (rev, ord): the commit that first wrote the node and its place in it, so
-- insertion order survives a rewrite of the same id; a commit appends at the
-- end of its session's range of nodes_by_insertion.
CREATE TABLE nodes (
    session_id     text NOT NULL,
    node_id        text NOT NULL,
    rev            integer NOT NULL,
    ord            integer NOT NULL,
    parent_node_id text,
    tombstoned     integer NOT NULL DEFAULT 0,
    data           blob NOT NULL
);
CREATE UNIQUE INDEX nodes_by_id ON nodes (session_id, node_id);
CREATE INDEX nodes_by_insertion ON nodes (session_id, rev, ord);

CREATE TABLE usage (
    session_id          text NOT NULL,
    rev                 integer NOT NULL,
    ord                 integer NOT NULL,
    source              text NOT NULL,
    model               text NOT NULL,
    input_tokens        integer NOT NULL,
    output_tokens       integer NOT NULL,
    cached_input_tokens integer NOT NULL,
    reasoning_tokens    integer NOT NULL,
    PRIMARY KEY (session_id, rev, ord)
) WITHOUT ROWID;
CREATE INDEX usage_by_model ON usage (model);

CREATE TABLE turn_stamps (
    session_id       text NOT NULL,
    turn_id          text NOT NULL,
    turn_commit_hash text NOT NULL,
    head_revision    integer NOT NULL,
    checkpoint_ref   text NOT NULL,
    manifest         blob,
    PRIMARY KEY (session_id, turn_id)
) WITHOUT ROWID;

CREATE TABLE session_meta (
    session_id    text PRIMARY KEY,
    meta          text NOT NULL,
    created_at_ms integer NOT NULL,
    updated_at_ms integer NOT NULL
) WITHOUT ROWID;

CREATE TABLE blobs (
    ref  text NOT NULL,
    data blob NOT NULL
);
CREATE UNIQUE INDEX blobs_by_ref ON blobs (ref);

-- A blob put and not yet named by a commit, protected from GC for a grace period.
CREATE TABLE blob_puts (
    ref       text PRIMARY KEY,
    put_at_ms integer NOT NULL
) WITHOUT ROWID;

CREATE TABLE attachment_manifest (
    attachment_id   text PRIMARY KEY,
    session_id      text NOT NULL,
    canonical_uri   text NOT NULL,
    intent_at_ms    integer NOT NULL,
    committed_at_ms integer
) WITHOUT ROWID;
CREATE INDEX attachment_manifest_by_session ON attachment_manifest (session_id, intent_at_ms);

CREATE TABLE attachments (
    attachment_id text NOT NULL,
    meta          text NOT NULL,
    data          blob NOT NULL
);
CREATE UNIQUE INDEX attachments_by_id ON attachments (attachment_id);
