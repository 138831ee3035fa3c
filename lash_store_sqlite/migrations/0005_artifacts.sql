-- Artifacts (spec/artifacts.md): module artifacts, raw artifact bytes and
-- execution envs in one table, the kind keeping them apart; a page of one kind
-- is one range of the unique index (refs compare by bytes: code point order).
-- A rowid table: artifacts may be large, and only the index entry goes where
-- the ref sorts.
CREATE TABLE artifacts (
    kind text NOT NULL CHECK (kind IN ('module', 'bytes', 'env')),
    ref  text NOT NULL,
    data blob NOT NULL
);
CREATE UNIQUE INDEX artifacts_by_ref ON artifacts (kind, ref);

-- The blobs each stored module artifact names: GC roots while the module is
-- stored. Read whole by GC (by blob_ref), replaced by module_ref on a put.
CREATE TABLE artifact_blobs (
    module_ref text NOT NULL,
    blob_ref   text NOT NULL,
    PRIMARY KEY (module_ref, blob_ref)
) WITHOUT ROWID;
CREATE INDEX artifact_blobs_by_blob ON artifact_blobs (blob_ref);
