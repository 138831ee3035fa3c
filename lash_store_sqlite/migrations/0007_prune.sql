-- Retention (lash_store_api.backend.prune). A process's log may be dropped once it
-- has been terminal for long enough, so each terminal process keeps when it became
-- terminal: the record's updated_at_ms (the storage's clock) when its state first
-- left running. A trigger stamps it, so every write that ends a process does,
-- whichever statement it is. Processes already terminal take their record's time
-- now, which is never earlier than when they ended.
ALTER TABLE processes ADD COLUMN terminal_at_ms integer;
UPDATE processes SET terminal_at_ms = json_extract(record, '$.updated_at_ms')
 WHERE state <> 'running';
CREATE TRIGGER processes_terminal_at AFTER UPDATE OF state ON processes
WHEN NEW.state <> 'running' AND NEW.terminal_at_ms IS NULL
BEGIN UPDATE processes SET terminal_at_ms = json_extract(NEW.record, '$.updated_at_ms') WHERE process_id = NEW.process_id; END;
CREATE INDEX processes_by_terminal_time ON processes (terminal_at_ms, process_id)
    WHERE terminal_at_ms IS NOT NULL;

-- Prune reads occurrences oldest first, a batch at a time.
CREATE INDEX trigger_occurrences_by_time ON trigger_occurrences (occurred_at_ms, occurrence_id);
