-- No statement reads usage by model through an index: usage_by_model() reads every
-- row, and each session's reads go by its primary key. Each commit that records
-- usage wrote an entry (a page of the log) to this index for nothing.
DROP INDEX usage_by_model;
