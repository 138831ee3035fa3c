-- session_blobs is read by (session_id, ref) on every read, replay and GC page, and by
-- ref alone across sessions (storage.blobs.get, GC's counts). An index of ref alone
-- served the first kind too, when the planner took it: a checkpoint many sessions hold
-- alike (every new session's first, say) was then found by reading every session's
-- row of it (1,600 rows for one read at 100k sessions in bench/scale.py). The index
-- holds the session as well, so either index finds the one row.
DROP INDEX {s}.session_blobs_ref;
CREATE INDEX session_blobs_ref ON {s}.session_blobs (ref, session_id);
