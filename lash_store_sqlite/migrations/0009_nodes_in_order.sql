-- A node's place in its session's insertion order is its row's seq, an INTEGER
-- PRIMARY KEY: a new row takes one more than the largest in the table, an upsert
-- of a known id keeps its row and so its place, and VACUUM keeps the value. A
-- session's nodes in order are the seqs nodes_by_id holds for it, sorted, so the
-- second index on (session_id, rev, ord) goes: a commit writes one index less (an
-- entry per node, a page of the log). The rows keep their order through the copy.
CREATE TABLE nodes_in_order (
    seq            integer PRIMARY KEY,
    session_id     text NOT NULL,
    node_id        text NOT NULL,
    parent_node_id text,
    tombstoned     integer NOT NULL DEFAULT 0,
    data           blob NOT NULL
);
INSERT INTO nodes_in_order (session_id, node_id, parent_node_id, tombstoned, data)
    SELECT session_id, node_id, parent_node_id, tombstoned, data FROM nodes
    ORDER BY session_id, rev, ord;
DROP TABLE nodes;
ALTER TABLE nodes_in_order RENAME TO nodes;
CREATE UNIQUE INDEX nodes_by_id ON nodes (session_id, node_id);
