-- The runtime commit as one PL/pgSQL function, with its two helpers
-- (repeatable: `migrate` runs this file again whenever its text changes, and
-- records its checksum). It first drops every version of these functions, so
-- their arguments and result columns may change freely; it runs inside
-- migrate's transaction, so no commit ever sees them missing.
--
-- Migration 0002_commit_function.sql created the first commit_turn; its text
-- stays as it was applied (migrations are checksummed, never edited). The drop
-- below replaces it: on a new database in the very migrate transaction that
-- created it, so it never serves a commit.
--
-- PL/pgSQL keeps its statements' plans for the life of the server connection,
-- so a commit is planned once per connection, with no client-side prepared
-- statements (which PgBouncer's transaction pooling cannot carry). The call runs
-- under the storage's timeouts (timeouts.py).
--
-- It looks, then writes if and only if the plan applies (lash_store_api.backend.commit:
-- CommitPlan.applies), and returns what it saw: whether it wrote, the head
-- revision, whether it could not take the head in time, the stamp stored for
-- this turn with its checkpoint blob, and the queue claims it found stale. The client decides the result or the
-- error from that alone (decide_commit), so every outcome takes one round trip.
-- {s} is the schema.

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc AS p
              WHERE p.pronamespace = '{s}'::regnamespace
                AND p.proname IN ('commit_turn', 'stored_stamp', 'head_revision',
                                  'stale_queue_claims', 'blobs_missing')
    LOOP
        EXECUTE 'DROP FUNCTION ' || f;
    END LOOP;
END
$$;

-- The stamp stored for a turn: its result's manifest, or for rows stored
-- before manifests were, the checkpoint blob it comes from (its session's row).
CREATE FUNCTION {s}.stored_stamp(p_session_id text, p_turn_id text,
    OUT stamp_hash text, OUT stamp_revision bigint, OUT stamp_ref text,
    OUT stamp_manifest bytea, OUT stamp_checkpoint bytea)
RETURNS SETOF record LANGUAGE sql STABLE AS $$
    SELECT t.turn_commit_hash, t.head_revision, t.checkpoint_ref, t.manifest,
           CASE WHEN t.manifest IS NULL THEN
               (SELECT b.data FROM {s}.session_blobs AS b
                 WHERE b.session_id = t.session_id AND b.ref = t.checkpoint_ref) END
      FROM {s}.turn_stamps AS t
     WHERE t.session_id = p_session_id AND t.turn_id = p_turn_id
$$;

-- The claim ids of a commit's completions (one entry per listed batch) whose
-- batch is not stored with that claim and token.
CREATE FUNCTION {s}.stale_queue_claims(p_session_id text, p_claims text[], p_tokens text[],
    p_batches text[]) RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT array_agg(DISTINCT c.claim_id)
      FROM unnest(p_claims, p_tokens, p_batches) AS c(claim_id, token, batch_id)
     WHERE NOT EXISTS (SELECT FROM {s}.queued_work AS q
                        WHERE q.session_id = p_session_id AND q.batch_id = c.batch_id
                          AND q.claim_id = c.claim_id AND q.lease_token = c.token)
$$;

-- Of p_refs (none of them in blobs), those stored nowhere; NULL when none is. A
-- checkpoint may name another checkpoint's envelope, stored only among sessions'
-- rows (session_blobs, read by ref on every shard: this runs only when blobs
-- lacks a ref): it is copied into blobs, where GC keeps whatever a root names,
-- while a session's own rows go with that session's roots.
CREATE FUNCTION {s}.blobs_missing(p_refs text[]) RETURNS text[] LANGUAGE sql AS $$
    INSERT INTO {s}.blobs (ref, data)
    SELECT DISTINCT ON (c.ref) c.ref, c.data FROM {s}.session_blobs AS c
     WHERE c.ref = ANY(p_refs)
    ON CONFLICT (ref) DO NOTHING;
    SELECT array_agg(r.ref) FROM unnest(p_refs) AS r(ref)
     WHERE NOT EXISTS (SELECT FROM {s}.blobs AS b WHERE b.ref = r.ref);
$$;

-- A session's head revision, 0 when it has none.
CREATE FUNCTION {s}.head_revision(p_session_id text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT h.head_revision FROM {s}.heads AS h
                      WHERE h.session_id = p_session_id), 0)
$$;

CREATE FUNCTION {s}.commit_turn(
    p_session_id     text,
    p_expected       bigint,   -- NULL or 0: the session has no head yet
    p_config         text,
    p_agent_frames   bytea,
    p_frame_id       text,
    p_checkpoint_ref text,
    p_checkpoint     bytea,
    p_manifest       bytea,    -- the checkpoint's manifest: what the turn stamp keeps
    p_blob_refs      text[],   -- blobs the checkpoint names: each must be stored
    p_leaf           text,
    p_replace        boolean,  -- ReplaceFull: the nodes sent are the whole graph
    p_node_ids       text[],
    p_parents        text[],
    p_node_data      bytea[],
    p_sources        text[],
    p_models         text[],
    p_inputs         bigint[],
    p_outputs        bigint[],
    p_cached         bigint[],
    p_reasoning      bigint[],
    p_turn_id        text,
    p_turn_hash      text,
    p_now_ms         bigint,
    p_at_ms          bigint,     -- the storage clock's time: the session's updated time
    p_attachment_ids text[],
    p_observe_only   boolean,    -- look, write nothing (completions that can never match)
    p_gc_lock        integer[],  -- the GC advisory lock's two keys (maintenance.py)
    p_session_lock   integer,    -- the first key of the session's lock (gc_sweep.py); the
                                 -- second is hashtext(p_session_id)
    p_q_claims       text[],     -- queue completions, one entry per listed batch:
    p_q_tokens       text[],     --   its claim id, lease token and batch id; each must be
    p_q_batches      text[],     --   stored so, and is deleted by the write
    OUT applied          boolean,
    OUT contended        boolean,
    OUT actual_revision  bigint,
    OUT stamp_hash       text,
    OUT stamp_revision   bigint,
    OUT stamp_ref        text,
    OUT stamp_manifest   bytea,
    OUT stamp_checkpoint bytea,
    OUT missing_blobs    text[],
    OUT stale_claims     text[]
) LANGUAGE plpgsql AS $$
DECLARE
    v_base     bigint := coalesce(p_expected, 0);
    v_revision bigint;  -- set once the head is known to be at v_base, so never overflows
    v_count    bigint := cardinality(p_node_ids);
    v_locked   boolean := false;
    v_written  boolean := false;
    v_settled  bigint;
    v_fresh    bigint;
    v_live     bigint := 0;  -- of the ids sent, those live before this commit
BEGIN
    applied := false;
    contended := false;

    -- A stored stamp is final: a retry is answered without waiting for any lock.
    IF p_turn_id IS NOT NULL THEN
        SELECT * INTO stamp_hash, stamp_revision, stamp_ref, stamp_manifest, stamp_checkpoint
          FROM {s}.stored_stamp(p_session_id, p_turn_id);
        IF FOUND THEN
            actual_revision := {s}.head_revision(p_session_id);
            RETURN;
        END IF;
    END IF;

    -- Take the locks: the GC lock shared until the transaction ends (a sweep never
    -- deletes a put blob this commit references), the session's lock shared likewise
    -- (a sweep of its checkpoints holds it while it deletes: commits to other sessions
    -- go on), then the head row (it queues the session's writers). Where all are
    -- free, as they nearly always are, they are
    -- taken at once; otherwise they are waited for inside a block that turns a lock
    -- timeout or a deadlock into contention, not an error. Only that block is a
    -- subtransaction: one on every commit cost more server time than the commit's
    -- writes.
    IF pg_try_advisory_xact_lock_shared(p_gc_lock[1], p_gc_lock[2])
       AND pg_try_advisory_xact_lock_shared(p_session_lock, hashtext(p_session_id)) THEN
        SELECT h.head_revision INTO actual_revision
          FROM {s}.heads AS h WHERE h.session_id = p_session_id FOR UPDATE SKIP LOCKED;
        v_locked := FOUND;
    END IF;
    IF NOT v_locked THEN  -- held by another, or no head yet
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(p_gc_lock[1], p_gc_lock[2]);
            PERFORM pg_advisory_xact_lock_shared(p_session_lock, hashtext(p_session_id));
            SELECT h.head_revision INTO actual_revision
              FROM {s}.heads AS h WHERE h.session_id = p_session_id FOR UPDATE;
        EXCEPTION
            WHEN lock_not_available OR deadlock_detected OR serialization_failure THEN
                contended := true;
                actual_revision := {s}.head_revision(p_session_id);
                RETURN;
        END;
    END IF;
    actual_revision := coalesce(actual_revision, 0);

    IF p_observe_only OR actual_revision <> v_base THEN
        -- A commit of this turn may have landed since the look above. Any commit
        -- that lands moves the head, so a head still at v_base needs no second look.
        IF p_turn_id IS NOT NULL AND actual_revision <> v_base THEN
            SELECT * INTO stamp_hash, stamp_revision, stamp_ref, stamp_manifest,
                          stamp_checkpoint
              FROM {s}.stored_stamp(p_session_id, p_turn_id);
        END IF;
        RETURN;
    END IF;
    -- Checked under the GC lock: a sweep cannot delete a named blob between
    -- this check and this commit's end.
    IF cardinality(p_blob_refs) > 0 THEN
        SELECT array_agg(r.ref) INTO missing_blobs FROM unnest(p_blob_refs) AS r(ref)
         WHERE NOT EXISTS (SELECT FROM {s}.blobs AS b WHERE b.ref = r.ref);
        IF missing_blobs IS NOT NULL THEN
            missing_blobs := {s}.blobs_missing(missing_blobs);
        END IF;
        IF missing_blobs IS NOT NULL THEN
            -- reported too, so that the client orders the errors (queue first)
            stale_claims := {s}.stale_queue_claims(p_session_id, p_q_claims, p_q_tokens,
                                                    p_q_batches);
            RETURN;
        END IF;
    END IF;

    -- The completed batches (each listed once, the kit checked) are locked before
    -- anything is written: exactly the rows held by the listed claim and token.
    -- Fewer than listed means a stale claim, and nothing is written. Rows another
    -- transaction holds are waited for as the head is, above.
    IF cardinality(p_q_batches) > 0 THEN
        SELECT count(*) INTO v_settled FROM (
            SELECT FROM {s}.queued_work AS q
             WHERE q.session_id = p_session_id AND q.batch_id = ANY(p_q_batches)
               AND EXISTS (SELECT FROM unnest(p_q_claims, p_q_tokens, p_q_batches)
                                AS c(claim_id, token, batch_id)
                            WHERE c.batch_id = q.batch_id AND c.claim_id = q.claim_id
                              AND c.token = q.lease_token)
               FOR UPDATE SKIP LOCKED) AS held;
        IF v_settled < cardinality(p_q_batches) THEN
            BEGIN
                SELECT count(*) INTO v_settled FROM (
                    SELECT FROM {s}.queued_work AS q
                     WHERE q.session_id = p_session_id AND q.batch_id = ANY(p_q_batches)
                       AND EXISTS (SELECT FROM unnest(p_q_claims, p_q_tokens, p_q_batches)
                                        AS c(claim_id, token, batch_id)
                                    WHERE c.batch_id = q.batch_id AND c.claim_id = q.claim_id
                                      AND c.token = q.lease_token)
                       FOR UPDATE) AS held;
            EXCEPTION
                WHEN lock_not_available OR deadlock_detected OR serialization_failure THEN
                    contended := true;
                    actual_revision := {s}.head_revision(p_session_id);
                    RETURN;
            END;
            IF v_settled < cardinality(p_q_batches) THEN
                stale_claims := {s}.stale_queue_claims(p_session_id, p_q_claims, p_q_tokens,
                                                        p_q_batches);
                RETURN;
            END IF;
        END IF;
    END IF;
    v_revision := v_base + 1;

    -- The head keeps the live node count: ids sent that are live already do
    -- not add to it (exact: the head row is locked, and these statements'
    -- snapshots are taken after the lock).
    IF v_base = 0 THEN
        -- A first commit racing this one may hold the id: waited for as a lock is.
        BEGIN
            INSERT INTO {s}.heads AS h (session_id, head_revision, config, agent_frames,
                    current_agent_frame_id, checkpoint_ref, leaf_node_id, graph_node_count,
                    created_at_ms, updated_at_ms)
            VALUES (p_session_id, 1, p_config, p_agent_frames, p_frame_id, p_checkpoint_ref,
                    p_leaf, v_count, p_at_ms, p_at_ms)
            ON CONFLICT (session_id) DO NOTHING;
            v_written := FOUND;
        EXCEPTION
            WHEN lock_not_available OR deadlock_detected OR serialization_failure THEN
                contended := true;
                actual_revision := {s}.head_revision(p_session_id);
                RETURN;
        END;
    ELSE
        -- An Append's nodes go in here, before the head: new ids are inserted, and
        -- only when some id was stored already (rare: a re-sent or revived node)
        -- are those rows counted and updated. Rows stored before this commit have
        -- a lower rev than its revision. The head row is locked at v_base, so its
        -- update below cannot miss.
        IF v_count > 0 AND NOT p_replace THEN
            INSERT INTO {s}.nodes (session_id, node_id, rev, ord, parent_node_id, data)
            SELECT p_session_id, u.node_id, v_revision, u.ord, u.parent, u.data
              FROM unnest(p_node_ids, p_parents, p_node_data) WITH ORDINALITY
                   AS u(node_id, parent, data, ord)
            ON CONFLICT (session_id, node_id) DO NOTHING;
            GET DIAGNOSTICS v_fresh = ROW_COUNT;
            IF v_fresh < v_count THEN
                SELECT count(*) INTO v_live FROM {s}.nodes AS n
                 WHERE n.session_id = p_session_id AND NOT n.tombstoned
                   AND n.node_id = ANY(p_node_ids) AND n.rev < v_revision;
                UPDATE {s}.nodes AS n
                   SET parent_node_id = u.parent, data = u.data, tombstoned = false
                  FROM unnest(p_node_ids, p_parents, p_node_data) AS u(node_id, parent, data)
                 WHERE n.session_id = p_session_id AND n.node_id = u.node_id
                   AND n.rev < v_revision;
            END IF;
        END IF;
        UPDATE {s}.heads AS h SET
            head_revision = v_revision, config = p_config, agent_frames = p_agent_frames,
            current_agent_frame_id = p_frame_id, checkpoint_ref = p_checkpoint_ref,
            leaf_node_id = p_leaf, updated_at = now(), updated_at_ms = p_at_ms,
            graph_node_count = CASE WHEN p_replace THEN v_count
                                    ELSE h.graph_node_count + v_count - v_live END
         WHERE h.session_id = p_session_id AND h.head_revision = p_expected;
        IF NOT FOUND THEN  -- cannot happen (locked above): write nothing rather than half
            RAISE EXCEPTION 'commit_turn: the head of % moved under its lock', p_session_id;
        END IF;
        v_written := true;
    END IF;
    IF NOT v_written THEN
        -- A first commit raced this one and won: report what it left.
        actual_revision := {s}.head_revision(p_session_id);
        IF p_turn_id IS NOT NULL THEN
            SELECT * INTO stamp_hash, stamp_revision, stamp_ref, stamp_manifest, stamp_checkpoint
              FROM {s}.stored_stamp(p_session_id, p_turn_id);
        END IF;
        RETURN;
    END IF;
    IF cardinality(p_q_batches) > 0 THEN
        -- Settle the batches: each is the row locked above (a batch id is unique in
        -- its session), still held by the listed claim and token.
        DELETE FROM {s}.queued_work AS q
         WHERE q.session_id = p_session_id AND q.batch_id = ANY(p_q_batches);
    END IF;

    -- The checkpoint is a row of this session (migration 0012): GC keeps it while
    -- the session's head or a stored turn result names it.
    INSERT INTO {s}.session_blobs (session_id, ref, data)
    VALUES (p_session_id, p_checkpoint_ref, p_checkpoint)
    ON CONFLICT (session_id, ref) DO NOTHING;
    IF cardinality(p_blob_refs) > 0 THEN  -- named now: no longer protected as fresh puts
        DELETE FROM {s}.blob_puts AS p WHERE p.ref = ANY(p_blob_refs);
        -- While a GC runs, its sweep keeps what this commit names (maintenance.py):
        -- the run's marks were read before this commit and may not hold it.
        IF EXISTS (SELECT FROM {s}.gc_runs) THEN
            INSERT INTO {s}.gc_named (ref) SELECT unnest(p_blob_refs);
        END IF;
    END IF;

    IF p_replace THEN
        DELETE FROM {s}.nodes AS n
         WHERE n.session_id = p_session_id AND n.node_id <> ALL(p_node_ids);
    END IF;
    IF v_count > 0 AND (v_base = 0 OR p_replace) THEN  -- (an Append's went in above)
        -- (rev, ord) is the insertion order: a known id keeps its place, unless
        -- ReplaceFull re-sequences the graph in the order sent.
        INSERT INTO {s}.nodes AS n (session_id, node_id, rev, ord, parent_node_id, data)
        SELECT p_session_id, u.node_id, v_revision, u.ord, u.parent, u.data
          FROM unnest(p_node_ids, p_parents, p_node_data) WITH ORDINALITY
               AS u(node_id, parent, data, ord)
        ON CONFLICT (session_id, node_id) DO UPDATE SET
            parent_node_id = EXCLUDED.parent_node_id, data = EXCLUDED.data, tombstoned = false,
            rev = CASE WHEN p_replace THEN EXCLUDED.rev ELSE n.rev END,
            ord = CASE WHEN p_replace THEN EXCLUDED.ord ELSE n.ord END;
    END IF;

    IF cardinality(p_sources) > 0 THEN
        INSERT INTO {s}.usage (session_id, rev, ord, source, model, input_tokens,
                output_tokens, cached_input_tokens, reasoning_tokens)
        SELECT p_session_id, v_revision, u.ord, u.source, u.model, u.i, u.o, u.c, u.r
          FROM unnest(p_sources, p_models, p_inputs, p_outputs, p_cached, p_reasoning)
               WITH ORDINALITY AS u(source, model, i, o, c, r, ord);
    END IF;

    IF p_turn_id IS NOT NULL THEN
        INSERT INTO {s}.turn_stamps (session_id, turn_id, turn_commit_hash, head_revision,
                checkpoint_ref, manifest)
        VALUES (p_session_id, p_turn_id, p_turn_hash, v_revision, p_checkpoint_ref, p_manifest);
    END IF;

    IF cardinality(p_attachment_ids) > 0 THEN
        UPDATE {s}.attachment_manifest AS m SET committed_at_ms = p_now_ms
         WHERE m.session_id = p_session_id AND m.attachment_id = ANY(p_attachment_ids)
           AND m.committed_at_ms IS NULL;
    END IF;

    applied := true;
END
$$;
