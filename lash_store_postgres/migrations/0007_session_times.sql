-- When each session was created and last written (SessionSummary.created_at_ms and
-- updated_at_ms), in epoch milliseconds of the storage's clock, on both tables a
-- session may have rows in: a commit stamps its head, a metadata save (or the
-- metadata create_store seeds) its meta row. A session's times are the earliest
-- created and the latest updated of its rows.
--
-- Existing heads take their updated_at for both times (the best known); existing
-- metadata takes its head's updated_at, or the time of this migration without one.
ALTER TABLE {s}.heads ADD COLUMN created_at_ms bigint, ADD COLUMN updated_at_ms bigint;
UPDATE {s}.heads
   SET created_at_ms = (extract(epoch FROM updated_at) * 1000)::bigint,
       updated_at_ms = (extract(epoch FROM updated_at) * 1000)::bigint;
ALTER TABLE {s}.heads ALTER COLUMN created_at_ms SET NOT NULL,
                      ALTER COLUMN updated_at_ms SET NOT NULL;

ALTER TABLE {s}.session_meta ADD COLUMN created_at_ms bigint, ADD COLUMN updated_at_ms bigint;
UPDATE {s}.session_meta AS m
   SET created_at_ms = t.ms, updated_at_ms = t.ms
  FROM (SELECT m2.session_id,
               (extract(epoch FROM coalesce(h.updated_at, now())) * 1000)::bigint AS ms
          FROM {s}.session_meta AS m2
          LEFT JOIN {s}.heads AS h ON h.session_id = m2.session_id) AS t
 WHERE t.session_id = m.session_id;
ALTER TABLE {s}.session_meta ALTER COLUMN created_at_ms SET NOT NULL,
                             ALTER COLUMN updated_at_ms SET NOT NULL;

-- Listing pages walk session ids in code point order (COLLATE "C", Python's str
-- order), by keyset and by literal prefix range, whatever the database's collation.
CREATE INDEX heads_session_id_c ON {s}.heads (session_id COLLATE "C");
CREATE INDEX session_meta_session_id_c ON {s}.session_meta (session_id COLLATE "C");
