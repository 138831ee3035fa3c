-- Triggers (spec/triggers.md) and artifacts (spec/artifacts.md).
--
-- A subscription is numbered by one sequence: its id and handle are made from
-- that number (the kit's prefixes), so handles are unique whatever registers at
-- the same time. The draft is canonical JSON text, never jsonb; the columns
-- beside it are what listing and matching filter on.
CREATE SEQUENCE {s}.trigger_subscription_seq AS bigint;

CREATE TABLE {s}.trigger_subscriptions (
    seq                   bigint PRIMARY KEY,
    subscription_id       text NOT NULL UNIQUE,
    handle                text NOT NULL,
    registrant_scope_id   text NOT NULL,
    registrant_session_id text,
    name                  text,
    source_type           text NOT NULL,
    source_key            text NOT NULL,
    target                text,  -- target_identity.definition as canonical JSON; NULL for null
    enabled               boolean NOT NULL,
    created_at_ms         bigint NOT NULL,
    updated_at_ms         bigint NOT NULL,
    document              text NOT NULL,
    UNIQUE (registrant_scope_id, handle)
);
CREATE INDEX trigger_subscriptions_source
    ON {s}.trigger_subscriptions (source_type, source_key) WHERE enabled;
CREATE INDEX trigger_subscriptions_session ON {s}.trigger_subscriptions (registrant_session_id);

-- One occurrence per idempotency key, across the whole store.
CREATE TABLE {s}.trigger_occurrences (
    idempotency_key text PRIMARY KEY,
    occurrence_id   text NOT NULL UNIQUE,
    source_type     text NOT NULL,
    source_key      text NOT NULL,
    payload         text NOT NULL,
    source          text NOT NULL,
    request_hash    text NOT NULL,
    occurred_at_ms  bigint NOT NULL
);

-- The primary key makes a reservation once per (occurrence, subscription): an
-- insert that conflicts does nothing, so concurrent reservers each get only the
-- rows they inserted. Deleting a subscription deletes its reservations.
CREATE TABLE {s}.trigger_reservations (
    occurrence_id   text NOT NULL REFERENCES {s}.trigger_occurrences (occurrence_id),
    subscription_id text NOT NULL
        REFERENCES {s}.trigger_subscriptions (subscription_id) ON DELETE CASCADE,
    reserved_at_ms  bigint NOT NULL,
    PRIMARY KEY (occurrence_id, subscription_id)
);
CREATE INDEX trigger_reservations_subscription ON {s}.trigger_reservations (subscription_id);

-- Module artifacts, raw artifact bytes and execution envs in one table, the kind
-- keeping them apart. A module's blob_refs are GC roots while it is stored.
CREATE TABLE {s}.artifacts (
    kind      text NOT NULL CHECK (kind IN ('module', 'bytes', 'env')),
    ref       text NOT NULL,
    data      bytea NOT NULL,
    blob_refs text[] NOT NULL DEFAULT ARRAY[]::text[],
    PRIMARY KEY (kind, ref)
);
