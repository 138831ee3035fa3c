-- The session reads' server side (repeatable, like commit_turn.sql: `migrate`
-- runs it again whenever its text changes). {s} is the schema.
--
-- PL/pgSQL keeps its statements' plans for the life of the server connection,
-- so these are planned once per connection, not per read: planning the head's
-- row (with its ledger), the nodes' scan beside it and the tail's walk each
-- time cost more than running them, for a small read. All are STABLE, so inside
-- the caller's statement they read the caller's snapshot: a read is still one
-- snapshot.

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc AS p
              WHERE p.pronamespace = '{s}'::regnamespace
                AND p.proname IN ('session_head', 'session_load', 'session_tail')
    LOOP
        EXECUTE 'DROP FUNCTION ' || f;
    END LOOP;
END
$$;

-- The head's row: its checkpoint blob (the session's own row of session_blobs),
-- and its fields as one JSON text (the ledger summed per (source, model) in
-- first-seen order), so that node rows beside it carry a single NULL for them.
-- No row when the session has no head.
CREATE FUNCTION {s}.session_head(p_sid text)
RETURNS TABLE (data bytea, head text) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT b.data,
           json_build_array(
               h.head_revision, h.config, encode(h.agent_frames, 'base64'),
               h.current_agent_frame_id, h.checkpoint_ref, h.leaf_node_id,
               (SELECT json_agg(json_build_array(g.source, g.model, g.i, g.o, g.c, g.r)
                                ORDER BY g.first)
                  FROM (SELECT u.source, u.model, min(ARRAY[u.rev, u.ord]) AS first,
                               sum(u.input_tokens) AS i, sum(u.output_tokens) AS o,
                               sum(u.cached_input_tokens) AS c, sum(u.reasoning_tokens) AS r
                          FROM {s}.usage AS u WHERE u.session_id = h.session_id
                         GROUP BY u.source, u.model) AS g))::text
      FROM {s}.heads AS h
      LEFT JOIN {s}.session_blobs AS b
             ON b.session_id = h.session_id AND b.ref = h.checkpoint_ref
     WHERE h.session_id = p_sid;
END
$$;

-- A whole read: the head's row (part 0), then every live node (part 1), in no
-- order: the client sorts them by (rev, ord), their insertion sequence. Sorting
-- here would cost the server more than the client: a sort copies every node's
-- data into sort memory, a third of a millisecond for 800 nodes, where the
-- client's sort of rows that mostly arrive in order is a tenth of that. No rows
-- when the session has no head.
CREATE FUNCTION {s}.session_load(p_sid text)
RETURNS TABLE (part integer, rev bigint, ord integer, node_id text, data bytea, head text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT 0, NULL::bigint, NULL::integer, NULL::text, s.data, s.head
                   FROM {s}.session_head(p_sid) AS s;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT 1, n.rev, n.ord, n.node_id, n.data, NULL::text
                   FROM {s}.nodes AS n
                  WHERE n.session_id = p_sid AND NOT n.tombstoned;
END
$$;

-- A tail read: the head's row (part 0), then up to p_limit live nodes (part 1)
-- walking parents from p_leaf (NULL: the head's leaf), each step one
-- primary-key lookup, so the cost follows the limit and not the session. A
-- cycle just repeats nodes up to the bound (the client keeps each once):
-- cheaper than carrying the visited ids along. With no leaf at all, the last
-- p_limit live nodes in insertion order. Nodes come in no order: the client
-- sorts them by (rev, ord).
CREATE FUNCTION {s}.session_tail(p_sid text, p_leaf text, p_limit integer)
RETURNS TABLE (part integer, rev bigint, ord integer, node_id text, data bytea, head text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_leaf text;
BEGIN
    RETURN QUERY SELECT 0, NULL::bigint, NULL::integer, NULL::text, s.data, s.head
                   FROM {s}.session_head(p_sid) AS s;
    IF NOT FOUND OR p_limit <= 0 THEN
        RETURN;
    END IF;
    v_leaf := p_leaf;
    IF v_leaf IS NULL THEN
        SELECT h.leaf_node_id INTO v_leaf FROM {s}.heads AS h WHERE h.session_id = p_sid;
    END IF;
    IF v_leaf IS NULL THEN
        RETURN QUERY
        SELECT 1, n.rev, n.ord, n.node_id, n.data, NULL::text
          FROM {s}.nodes AS n
         WHERE n.session_id = p_sid AND NOT n.tombstoned
         ORDER BY n.rev DESC, n.ord DESC LIMIT p_limit;
        RETURN;
    END IF;
    RETURN QUERY
    WITH RECURSIVE walk AS (
        SELECT n.rev, n.ord, n.node_id, n.data, n.parent_node_id, 1 AS depth
          FROM {s}.nodes AS n
         WHERE n.session_id = p_sid AND n.node_id = v_leaf AND NOT n.tombstoned
        UNION ALL
        SELECT n.rev, n.ord, n.node_id, n.data, n.parent_node_id, w.depth + 1
          FROM walk AS w
          JOIN {s}.nodes AS n ON n.session_id = p_sid AND n.node_id = w.parent_node_id
         WHERE NOT n.tombstoned AND w.depth < p_limit
    )
    SELECT 1, w.rev, w.ord, w.node_id, w.data, NULL::text FROM walk AS w;
END
$$;
