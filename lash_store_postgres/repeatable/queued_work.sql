-- The queue's claim as one PL/pgSQL function (repeatable, like commit_turn.sql:
-- `migrate` runs it again whenever its text changes). {s} is the schema.
--
-- It follows the kit's claim state machine (lash_store_api.backend.queued_work:
-- candidates, select_group, stamp_rows) rule for rule, so that a claim is one
-- round trip: the candidates are read through a cursor FOR UPDATE SKIP LOCKED,
-- one row at a time, so concurrent claimers never wait for each other, never
-- take the same batch, and lock only the rows they look at.

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc AS p
              WHERE p.pronamespace = '{s}'::regnamespace
                AND p.proname IN ('claim_queued_work')
    LOOP
        EXECUTE 'DROP FUNCTION ' || f;
    END LOOP;
END
$$;

CREATE FUNCTION {s}.claim_queued_work(
    p_session_id text,
    p_owner_id   text,
    p_idle       boolean,  -- ClaimBoundary.IDLE; else ACTIVE_TURN_CHECKPOINT
    p_max        integer,
    p_exact      text[],   -- an exact claim's batch ids; NULL for a claim by boundary
    p_token      text,
    p_now        bigint,
    p_ttl        bigint
) RETURNS SETOF {s}.queued_work LANGUAGE plpgsql AS $$
DECLARE
    -- Pending and ready, by enqueue_seq; rows a concurrent claim holds are skipped.
    c CURSOR FOR
        SELECT q.enqueue_seq, q.batch_id, q.delivery_policy, q.slot_policy, q.merge_key,
               q.fencing_token
          FROM {s}.queued_work AS q
         WHERE q.session_id = p_session_id AND q.available_at_ms <= p_now
           AND (q.lease_token IS NULL OR q.expires_at_ms <= p_now)
         ORDER BY q.enqueue_seq
           FOR UPDATE SKIP LOCKED;
    r       record;
    v_first record;
    v_seqs  bigint[] := ARRAY[]::bigint[];
    v_ids   text[] := ARRAY[]::text[];
    v_fence bigint;
BEGIN
    IF p_max <= 0 THEN
        RETURN;
    END IF;
    OPEN c;
    LOOP
        FETCH c INTO r;
        EXIT WHEN NOT FOUND;
        IF cardinality(v_seqs) = 0 THEN
            -- The first candidate decides: the boundary admits it or nothing.
            EXIT WHEN NOT p_idle AND r.delivery_policy <> 'earliest_safe_boundary';
            v_first := r;
        ELSIF r.slot_policy <> 'join' OR r.delivery_policy <> v_first.delivery_policy
              OR r.merge_key <> v_first.merge_key THEN
            EXIT;
        END IF;
        v_seqs := v_seqs || r.enqueue_seq;
        v_ids := v_ids || r.batch_id;
        EXIT WHEN r.slot_policy = 'exclusive' OR cardinality(v_seqs) >= p_max;
    END LOOP;
    CLOSE c;
    IF cardinality(v_seqs) = 0 THEN
        RETURN;
    END IF;
    v_fence := v_first.fencing_token + 1;
    IF p_exact IS NOT NULL AND v_ids <> p_exact THEN
        -- Not what was asked for: as if claimed and abandoned at once.
        UPDATE {s}.queued_work AS q SET fencing_token = q.fencing_token + 1
         WHERE q.session_id = p_session_id AND q.enqueue_seq = ANY(v_seqs);
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE {s}.queued_work AS q SET
        fencing_token = q.fencing_token + 1,
        claim_id = 'qwc:' || v_first.enqueue_seq || ':' || v_fence,
        owner_id = p_owner_id,
        lease_token = p_token,
        claimed_at_ms = p_now,
        expires_at_ms = p_now + p_ttl
     WHERE q.session_id = p_session_id AND q.enqueue_seq = ANY(v_seqs)
    RETURNING q.*;
END
$$;
