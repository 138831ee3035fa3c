-- An event row no longer checks its process row through a foreign key. An append
-- (repeatable/processes.sql) inserts its event only while it holds that process row
-- locked FOR UPDATE, having found it, and no statement deletes a process row: the
-- check could never fail, and it was a query of its own inside every append, under
-- the lock every other append to the process waits on (a sixteenth of the append's
-- server time). Grants, leases and wake acks keep theirs: they are not on that path.
ALTER TABLE {s}.process_events DROP CONSTRAINT process_events_process_id_fkey;
