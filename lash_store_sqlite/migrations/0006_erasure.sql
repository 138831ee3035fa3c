-- Erasure (docs/semantics.md, "Attachments"): each session that records an
-- intent for some bytes keeps its own manifest row, so bytes two sessions share
-- stay named until the last of them is deleted; GC then collects attachment
-- bytes no row names. SQLite cannot change a primary key: the table is rebuilt.
CREATE TABLE attachment_manifest_by_owner (
    session_id      text NOT NULL,
    attachment_id   text NOT NULL,
    canonical_uri   text NOT NULL,
    intent_at_ms    integer NOT NULL,
    committed_at_ms integer,
    PRIMARY KEY (session_id, attachment_id)
) WITHOUT ROWID;
INSERT INTO attachment_manifest_by_owner
    SELECT session_id, attachment_id, canonical_uri, intent_at_ms, committed_at_ms
    FROM attachment_manifest;
DROP TABLE attachment_manifest;
ALTER TABLE attachment_manifest_by_owner RENAME TO attachment_manifest;
CREATE INDEX attachment_manifest_by_session ON attachment_manifest (session_id, intent_at_ms);
-- GC asks, per stored attachment, whether any row names it.
CREATE INDEX attachment_manifest_by_attachment ON attachment_manifest (attachment_id);

-- Attachment bytes put and not yet named by a manifest row are safe from GC
-- for the grace period, as blobs are (blob_puts). Bytes stored before this
-- migration get a full grace period from now.
CREATE TABLE attachment_puts (
    attachment_id text PRIMARY KEY,
    put_at_ms     integer NOT NULL
) WITHOUT ROWID;
INSERT INTO attachment_puts (attachment_id, put_at_ms)
    SELECT attachment_id, CAST((julianday('now') - 2440587.5) * 86400000 AS integer)
    FROM attachments;
