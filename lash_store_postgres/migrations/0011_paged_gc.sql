-- GC in pages (maintenance.py): its marks live on the server, and its sweep
-- deletes a page of blobs per short transaction, so neither the client's memory
-- nor the pause it puts on commits grows with the store.
--
-- A run is registered in gc_runs (under the GC lock held exclusively, so every
-- commit either finished before it or sees it). While any run is registered,
-- each commit and module put records every blob it names in gc_named; the sweep
-- keeps those, so a blob named after the marks were read is never deleted. All
-- three tables hold only what a run in progress needs, so they are unlogged: a
-- server crash empties them, and ends the runs they served.
CREATE UNLOGGED TABLE {s}.gc_runs (
    run_id        text PRIMARY KEY,
    started_at_ms bigint NOT NULL
);

-- kind: 2 a checkpoint root, 1 another root (a module's blob), 0 kept otherwise
-- (named by a root, or a fresh put).
CREATE UNLOGGED TABLE {s}.gc_marks (
    run_id text NOT NULL,
    ref    text NOT NULL,
    kind   smallint NOT NULL,
    PRIMARY KEY (run_id, ref)
);

-- No key: commits naming the same blob never wait for each other here.
CREATE UNLOGGED TABLE {s}.gc_named (
    ref text NOT NULL
);
CREATE INDEX gc_named_ref ON {s}.gc_named (ref);
