-- Retention (lash_store_api.backend.prune). A process's log may be dropped once it
-- has been terminal for long enough, so each terminal process keeps when it became
-- terminal: the record's updated_at_ms (the storage's clock) when its state first
-- left running. A trigger stamps it, so every write that ends a process does,
-- whichever statement or function it is; the WHEN clause keeps it off every other
-- write. The record is read as json (never jsonb), for one number; a \u0000 escape
-- in any of its strings would stop that parse (json cannot turn it into text), so
-- each one is read as \u0001 instead: still valid JSON, the number untouched.
-- Processes already terminal take their record's time now, never earlier than when
-- they ended.
ALTER TABLE {s}.processes ADD COLUMN terminal_at_ms bigint;
UPDATE {s}.processes SET terminal_at_ms = (replace(record, '\u0000', '\u0001')::json ->> 'updated_at_ms')::bigint
 WHERE state <> 'running';

CREATE FUNCTION {s}.stamp_terminal_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.terminal_at_ms := (replace(NEW.record, '\u0000', '\u0001')::json ->> 'updated_at_ms')::bigint;
    RETURN NEW;
END
$$;
CREATE TRIGGER processes_terminal_at BEFORE INSERT OR UPDATE ON {s}.processes
    FOR EACH ROW WHEN (NEW.state <> 'running' AND NEW.terminal_at_ms IS NULL)
    EXECUTE FUNCTION {s}.stamp_terminal_at();
CREATE INDEX processes_terminal_time ON {s}.processes (terminal_at_ms, process_id)
    WHERE terminal_at_ms IS NOT NULL;

-- Prune reads occurrences oldest first, a batch at a time.
CREATE INDEX trigger_occurrences_time ON {s}.trigger_occurrences (occurred_at_ms, occurrence_id);
