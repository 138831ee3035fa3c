-- A layout that shards by session (lash_store_postgres/layout.py names each table's
-- distribution column; docs/operations.md, "Sharding by session", the commands).
--
-- A commit's checkpoint envelope becomes a row of its own session, keyed
-- (session_id, ref): the commit that writes it and the read that returns it stay
-- on the session's shard. blobs keeps what storage.blobs puts, keyed by ref alone
-- (its own distribution column). Every head's and stored turn result's envelope is
-- copied here; the copies left in blobs go at a GC once nothing there keeps them.
-- A session's rows are kept while its own head or stored turn results name them.
CREATE TABLE {s}.session_blobs (
    session_id text NOT NULL,
    ref        text NOT NULL,
    data       bytea NOT NULL,
    PRIMARY KEY (session_id, ref)
);
-- A read by ref alone: storage.blobs.get of a checkpoint, GC decoding its roots.
CREATE INDEX session_blobs_ref ON {s}.session_blobs (ref);
INSERT INTO {s}.session_blobs (session_id, ref, data)
SELECT r.session_id, r.ref, b.data
  FROM (SELECT session_id, checkpoint_ref FROM {s}.heads
        UNION SELECT session_id, checkpoint_ref FROM {s}.turn_stamps) AS r (session_id, ref)
  JOIN {s}.blobs AS b ON b.ref = r.ref;

-- GC looks its marks up by ref beside each blob: keyed by ref first, as blobs is.
ALTER TABLE {s}.gc_marks DROP CONSTRAINT gc_marks_pkey, ADD PRIMARY KEY (ref, run_id);

-- A process's grants are keyed by the process first, as its other tables are; a
-- scope's grants are listed through their own index. The primary key now serves
-- what process_grants_process did.
ALTER TABLE {s}.process_grants DROP CONSTRAINT process_grants_pkey,
    ADD PRIMARY KEY (process_id, scope_id);
CREATE INDEX process_grants_scope ON {s}.process_grants (scope_id, process_id);
DROP INDEX {s}.process_grants_process;
