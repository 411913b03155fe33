-- The alert queue at a million alerts (measured with `bulwark-bench triage`; numbers and the
-- reasoning in docs/benchmarks.md, "Triage queue at 1M alerts").

-- Equality filters of the queue. Each index is ordered by id within the value, so a page
-- of one host / address / assignee is read in queue order, without a sort.
CREATE INDEX alerts_hostname ON alerts (hostname, id) WHERE hostname IS NOT NULL;
CREATE INDEX alerts_source_ip ON alerts (source_ip, id) WHERE source_ip IS NOT NULL;
CREATE INDEX alerts_dest_ip ON alerts (dest_ip, id) WHERE dest_ip IS NOT NULL;
-- New alerts are unassigned, so ingestion never writes to this one.
CREATE INDEX alerts_assignee ON alerts (assignee_id, id) WHERE assignee_id IS NOT NULL;
-- Time-range filters.
DROP INDEX alerts_first_seen;
CREATE INDEX alerts_first_seen ON alerts (first_seen, id);

-- Free-text search: a trigram index (pg_trgm, shipped with PostgreSQL's contrib modules and
-- a trusted extension: a database owner may create it) over title, description and rule name
-- in one expression. U+001F separates the fields, so a match never spans two of them; the
-- queue query repeats this exact expression (`alerts.rs`, `PG_SEARCH_EXPR`).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX alerts_search_trgm ON alerts USING gin (
    lower(title || E'\x1f' || COALESCE(description, '') || E'\x1f' || COALESCE(rule_name, '')) gin_trgm_ops
);

-- Tag filters (`tags @> '["x"]'`).
CREATE INDEX alerts_tags ON alerts USING gin (tags);

-- Statistics for the new expression index now, not at the next automatic ANALYZE: without
-- them the planner cannot tell a common word from a rare one.
ANALYZE alerts;
