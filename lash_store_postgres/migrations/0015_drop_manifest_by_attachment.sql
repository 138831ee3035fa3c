-- GC no longer looks manifest rows up by attachment id (it marks the ids the manifest
-- names, 0013), and nothing else does: every other lookup names the session, which
-- the primary key (session_id, attachment_id) serves. Kept, the index would cost every
-- intent a second write, and the planner could take it for a session's own rows (a
-- commit stamping its attachments) and read every session's row of bytes many
-- sessions share, as 0014 says of session_blobs.
DROP INDEX {s}.attachment_manifest_by_attachment;
