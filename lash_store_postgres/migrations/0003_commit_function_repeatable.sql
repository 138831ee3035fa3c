-- The commit function now lives in repeatable/commit_turn.sql, applied with
-- CREATE OR REPLACE whenever its text changes. Its result columns changed, which
-- CREATE OR REPLACE cannot do, so the version 0002 created is dropped here.
DROP FUNCTION IF EXISTS {s}.commit_turn(
    text, bigint, text, bytea, text, text, bytea, text, boolean,
    text[], text[], bytea[], text[], text[], bigint[], bigint[], bigint[], bigint[],
    text, text, bigint, text[], integer[]);
