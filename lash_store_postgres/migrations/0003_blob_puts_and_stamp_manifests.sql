-- Fresh blob puts, and turn results that do not pin their checkpoints.
--
-- A blob put through the blob store is protected from GC for a grace period
-- until a commit names it (design.md, departure 8): its put time is kept here,
-- and the commit that names it deletes the row. Shared by every session, like
-- the blobs themselves.
CREATE TABLE {s}.blob_puts (
    ref       text PRIMARY KEY,
    put_at_ms bigint NOT NULL
);

-- A stored turn result keeps its manifest, so it no longer needs its
-- checkpoint blob and is no GC root. Rows stored before have none and fall
-- back to the blob, which stays rooted while they exist.
ALTER TABLE {s}.turn_stamps ADD COLUMN manifest bytea;

-- Retention keeps each session's latest turn results (maintenance.py).
CREATE INDEX turn_stamps_by_revision ON {s}.turn_stamps (session_id, head_revision);
