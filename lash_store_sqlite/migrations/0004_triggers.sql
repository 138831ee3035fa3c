-- Triggers (spec/triggers.md). Text compares by bytes, which is code point order:
-- the kit's listing order, so a page is one range of the primary key.

-- The one counter that numbers subscriptions (the kit makes the id and handle from
-- it); a deleted subscription's number is never handed out again.
CREATE TABLE trigger_counters (
    name  text PRIMARY KEY,
    value integer NOT NULL
) WITHOUT ROWID;
INSERT INTO trigger_counters (name, value) VALUES ('subscription', 0);

-- Keyed by the listing order, (registrant scope id, handle), which is unique. The
-- draft is canonical JSON text; the columns beside it are what listing and
-- matching filter on. enabled is 0 or 1.
CREATE TABLE trigger_subscriptions (
    registrant_scope_id   text NOT NULL,
    handle                text NOT NULL,
    seq                   integer NOT NULL UNIQUE,
    subscription_id       text NOT NULL UNIQUE,
    registrant_session_id text,
    name                  text,
    source_type           text NOT NULL,
    source_key            text NOT NULL,
    target                text,
    enabled               integer NOT NULL,
    created_at_ms         integer NOT NULL,
    updated_at_ms         integer NOT NULL,
    document              text NOT NULL,
    PRIMARY KEY (registrant_scope_id, handle)
) WITHOUT ROWID;
CREATE INDEX trigger_subscriptions_by_source
    ON trigger_subscriptions (source_type, source_key) WHERE enabled;
CREATE INDEX trigger_subscriptions_by_session
    ON trigger_subscriptions (registrant_session_id, handle);

-- One occurrence per idempotency key, across the whole store.
CREATE TABLE trigger_occurrences (
    idempotency_key text PRIMARY KEY,
    occurrence_id   text NOT NULL UNIQUE,
    source_type     text NOT NULL,
    source_key      text NOT NULL,
    payload         text NOT NULL,
    source          text NOT NULL,
    request_hash    text NOT NULL,
    occurred_at_ms  integer NOT NULL
) WITHOUT ROWID;

-- One reservation per (occurrence, subscription); deleting a subscription
-- deletes its reservations (by the index on subscription_id).
CREATE TABLE trigger_reservations (
    occurrence_id   text NOT NULL,
    subscription_id text NOT NULL,
    reserved_at_ms  integer NOT NULL,
    PRIMARY KEY (occurrence_id, subscription_id)
) WITHOUT ROWID;
CREATE INDEX trigger_reservations_by_subscription ON trigger_reservations (subscription_id);
