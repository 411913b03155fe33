-- The alert queue at a million alerts (measured with `bulwark-bench triage`; numbers and the
-- reasoning in docs/benchmarks.md, "Triage queue at 1M alerts").

-- Equality filters of the queue. Each index is ordered by id within the value, so a page
-- of one host / address / assignee is read in queue order, without a sort.
CREATE INDEX alerts_hostname ON alerts (hostname, id) WHERE hostname IS NOT NULL;
CREATE INDEX alerts_source_ip ON alerts (source_ip, id) WHERE source_ip IS NOT NULL;
CREATE INDEX alerts_dest_ip ON alerts (dest_ip, id) WHERE dest_ip IS NOT NULL;
-- New alerts are unassigned, so ingestion never writes to this one.
CREATE INDEX alerts_assignee ON alerts (assignee_id, id) WHERE assignee_id IS NOT NULL;
-- Time-range filters: 0008's index on first_seen, extended by id so a range is read in
-- queue order.
DROP INDEX alerts_first_seen;
CREATE INDEX alerts_first_seen ON alerts (first_seen, id);

-- Free-text search: a trigram index over title, description and rule name, so a search for
-- any substring of 3 or more characters (case-insensitive) finds its alerts without reading
-- every row. FTS5 needs an integer key that never changes; alerts have a UUID key and an
-- implicit rowid (which VACUUM may renumber), so `alert_search` gives each alert a stable
-- integer, and triggers keep both tables in step with `alerts`.
CREATE TABLE alert_search (
    rowid     INTEGER PRIMARY KEY,
    alert_id  BLOB NOT NULL UNIQUE
) STRICT;
CREATE VIRTUAL TABLE alert_search_fts USING fts5 (
    title, description, rule_name,
    content = '', contentless_delete = 1, tokenize = 'trigram', detail = 'none'
);

INSERT INTO alert_search (alert_id) SELECT id FROM alerts ORDER BY id;
INSERT INTO alert_search_fts (rowid, title, description, rule_name)
    SELECT s.rowid, a.title, a.description, a.rule_name
    FROM alert_search s JOIN alerts a ON a.id = s.alert_id;

CREATE TRIGGER alerts_search_insert AFTER INSERT ON alerts BEGIN
    INSERT INTO alert_search (alert_id) VALUES (new.id);
    INSERT INTO alert_search_fts (rowid, title, description, rule_name)
        VALUES (last_insert_rowid(), new.title, new.description, new.rule_name);
END;

CREATE TRIGGER alerts_search_update AFTER UPDATE OF title, description, rule_name ON alerts BEGIN
    DELETE FROM alert_search_fts WHERE rowid = (SELECT rowid FROM alert_search WHERE alert_id = old.id);
    INSERT INTO alert_search_fts (rowid, title, description, rule_name)
        SELECT rowid, new.title, new.description, new.rule_name FROM alert_search WHERE alert_id = new.id;
END;

CREATE TRIGGER alerts_search_delete AFTER DELETE ON alerts BEGIN
    DELETE FROM alert_search_fts WHERE rowid = (SELECT rowid FROM alert_search WHERE alert_id = old.id);
    DELETE FROM alert_search WHERE alert_id = old.id;
END;

-- Tag filters: each tag of each alert, kept in step with `alerts.tags` by triggers (SQLite
-- cannot index the elements of a JSON array).
CREATE TABLE alert_tags (
    tag       TEXT NOT NULL,
    alert_id  BLOB NOT NULL,
    PRIMARY KEY (tag, alert_id)
) STRICT, WITHOUT ROWID;

INSERT OR IGNORE INTO alert_tags (tag, alert_id)
    SELECT t.value, a.id FROM alerts a, json_each(a.tags) t WHERE t.type = 'text';

CREATE TRIGGER alerts_tags_insert AFTER INSERT ON alerts WHEN new.tags <> '[]' BEGIN
    INSERT OR IGNORE INTO alert_tags (tag, alert_id)
        SELECT value, new.id FROM json_each(new.tags) WHERE type = 'text';
END;

CREATE TRIGGER alerts_tags_update AFTER UPDATE OF tags ON alerts BEGIN
    DELETE FROM alert_tags WHERE alert_id = old.id AND tag IN (SELECT value FROM json_each(old.tags));
    INSERT OR IGNORE INTO alert_tags (tag, alert_id)
        SELECT value, new.id FROM json_each(new.tags) WHERE type = 'text';
END;

CREATE TRIGGER alerts_tags_delete AFTER DELETE ON alerts BEGIN
    DELETE FROM alert_tags WHERE alert_id = old.id AND tag IN (SELECT value FROM json_each(old.tags));
END;
