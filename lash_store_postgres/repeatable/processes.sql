-- A process event append as one PL/pgSQL function (repeatable, like commit_turn.sql:
-- `migrate` runs it again whenever its text changes). {s} is the schema.
--
-- The kit plans the append before any I/O (lash_store_api.backend.process_plan:
-- plan_append): event type, payload schema, semantics, wake, hashes and
-- encodings, with chr(1) where the sequence goes and chr(2) where the wake id
-- goes. This function restates judge_append (the checks on what is stored, in
-- its order) and append_rows (the writes), rule for rule, and reports an
-- outcome the kit turns into the result or the error (decide_append).
-- tests/test_sql_twins.py feeds both the same rows.

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc AS p
              WHERE p.pronamespace = '{s}'::regnamespace
                AND p.proname IN ('append_process_event')
    LOOP
        EXECUTE 'DROP FUNCTION ' || f;
    END LOOP;
END
$$;

CREATE FUNCTION {s}.append_process_event(
    p_pid          text,
    p_key          text,     -- the replay key, or NULL
    p_hash         text,     -- the payload hash
    p_type         text,
    p_has_wake     boolean,
    p_event        text,     -- the encoded event; NULL when the plan is a refusal
    p_terminal     boolean,
    p_record_after text,     -- a terminal event's record after it, its state,
    p_state_after  text,
    p_basis_md5    text,     -- and the digest of the record it was planned from
    p_check_target boolean,  -- the stored wake target's session must be p_target
    p_target       text,
    p_reg_prefix   text,     -- the stored record starts with this (creation, event types)
    p_reg_mark     text,     -- and holds this (its registration hash)
    p_now          bigint,
    p_channel      text,
    -- The wake's queued-work row; p_wake_sid NULL: no wake.
    p_wake_sid       text,
    p_wake_batch     text,
    p_wake_key       text[],  -- the source key, split where the sequence goes
    p_wake_delivery  text,
    p_wake_slot      text,
    p_wake_merge     text,
    p_wake_available bigint,
    p_wake_payloads  text,
    p_wake_id_text   text,    -- what the wake id hashes
    OUT o_outcome text, OUT o_sequence bigint, OUT o_record text, OUT o_replay_hash text,
    OUT o_replay_event text
) LANGUAGE plpgsql AS $$
DECLARE
    r       record;
    v_seq   bigint;
    v_wake  text;
    v_at    integer;
BEGIN
    o_sequence := 0;  -- the sequence taken; 0 for every outcome but 'appended'
    -- Concurrent appends to one process queue up here and take last_sequence + 1 in turn.
    SELECT p.state, p.wake_target_session, p.last_sequence, p.record INTO r
      FROM {s}.processes AS p WHERE p.process_id = p_pid FOR UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'missing';
        RETURN;
    END IF;
    IF NOT starts_with(r.record, p_reg_prefix) OR strpos(r.record, p_reg_mark) = 0
       OR (p_check_target AND r.wake_target_session IS DISTINCT FROM p_target) THEN
        o_outcome := 'stale'; o_record := r.record;
        RETURN;
    END IF;
    IF p_key IS NOT NULL THEN
        -- A statement of its own, after the lock: its snapshot sees the event an
        -- appender this one waited for committed under the key.
        SELECT e.payload_hash, e.event INTO o_replay_hash, o_replay_event
          FROM {s}.process_events AS e
         WHERE e.process_id = p_pid AND e.replay_key = p_key;
        IF FOUND THEN
            o_outcome := 'replayed'; o_record := r.record;
            RETURN;
        END IF;
    END IF;
    IF p_event IS NULL THEN
        o_outcome := 'open';
        RETURN;
    END IF;
    IF p_terminal AND r.state <> 'running' THEN
        o_outcome := 'terminal'; o_record := r.record;
        RETURN;
    END IF;
    IF p_terminal AND md5(r.record) <> p_basis_md5 THEN
        o_outcome := 'stale'; o_record := r.record;
        RETURN;
    END IF;

    v_seq := r.last_sequence + 1;
    INSERT INTO {s}.process_events
           (process_id, sequence, event_type, payload_hash, replay_key, has_wake, event)
    VALUES (p_pid, v_seq, p_type, p_hash, p_key, p_has_wake,
            replace(p_event, chr(1), v_seq::text));
    IF p_terminal THEN
        -- terminal_at_ms (migration 0010) is the record's time, p_now: set here, the
        -- stamping trigger need not parse the record.
        UPDATE {s}.processes
           SET state = p_state_after, waiting = false, record = p_record_after,
               last_sequence = v_seq, terminal_at_ms = coalesce(terminal_at_ms, p_now)
         WHERE process_id = p_pid;
    ELSE
        -- Only updated_at_ms moves: its last occurrence is the top-level key, and the
        -- digits after it are replaced (splice_updated_at). The last occurrence is
        -- found from the end (a greedy regular expression cost more than the rest of
        -- the append's SQL).
        v_at := strpos(reverse(r.record), reverse('"updated_at_ms":'));
        UPDATE {s}.processes
           SET record = left(r.record, length(r.record) - v_at + 1) || p_now
                        || ltrim(right(r.record, v_at - 1), '-0123456789'),
               last_sequence = v_seq
         WHERE process_id = p_pid;
    END IF;
    IF p_wake_sid IS NOT NULL THEN
        v_wake := 'wake:' || encode(sha256(convert_to(
                      replace(p_wake_id_text, chr(1), v_seq::text), 'UTF8')), 'hex');
        -- As ENQUEUE (queued_work.py): a batch still holding the key keeps it.
        INSERT INTO {s}.queued_work (session_id, batch_id, source_key, delivery_policy,
                slot_policy, merge_key, available_at_ms, enqueued_at_ms, payloads)
        VALUES (p_wake_sid, p_wake_batch, array_to_string(p_wake_key, v_seq::text),
                p_wake_delivery, p_wake_slot, p_wake_merge, p_wake_available, p_now,
                replace(replace(p_wake_payloads, chr(1), v_seq::text), chr(2), v_wake))
        ON CONFLICT (session_id, source_key) WHERE source_key IS NOT NULL DO NOTHING;
    END IF;
    PERFORM pg_notify(p_channel, p_pid);
    o_outcome := 'appended'; o_sequence := v_seq;
END
$$;
