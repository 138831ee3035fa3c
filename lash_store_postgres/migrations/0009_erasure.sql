-- Erasure (docs/semantics.md, "Attachments"): each session that records an
-- intent for some bytes keeps its own manifest row, keyed by session first as
-- every per-session table is, so bytes two sessions share stay named until the
-- last of them is deleted; GC then collects attachment bytes no row names.
ALTER TABLE {s}.attachment_manifest DROP CONSTRAINT attachment_manifest_pkey;
ALTER TABLE {s}.attachment_manifest ADD PRIMARY KEY (session_id, attachment_id);
-- GC asks, per stored attachment, whether any row names it.
CREATE INDEX attachment_manifest_by_attachment ON {s}.attachment_manifest (attachment_id);

-- Attachment bytes put and not yet named by a manifest row are safe from GC
-- for the grace period, as blobs are (blob_puts). Bytes stored before this
-- migration get a full grace period from now.
CREATE TABLE {s}.attachment_puts (
    attachment_id text PRIMARY KEY,
    put_at_ms     bigint NOT NULL
);
INSERT INTO {s}.attachment_puts (attachment_id, put_at_ms)
    SELECT attachment_id, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
    FROM {s}.attachments;
