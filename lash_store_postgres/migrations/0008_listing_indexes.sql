-- Keyset pages of the process, subscription and artifact listings. Text keys
-- are ordered by code point (COLLATE "C", the order Python sorts strings in),
-- whatever the database's collation, so each listing needs an index in that
-- collation to read one page without sorting the whole table. Queued work
-- pages on its primary key (session_id, enqueue_seq) and needs none.
CREATE INDEX processes_listing ON {s}.processes (process_id COLLATE "C");
CREATE INDEX processes_state_listing ON {s}.processes (state, process_id COLLATE "C");
CREATE INDEX trigger_subscriptions_listing
    ON {s}.trigger_subscriptions (registrant_scope_id COLLATE "C", handle COLLATE "C");
CREATE INDEX artifacts_listing ON {s}.artifacts (kind, ref COLLATE "C");
