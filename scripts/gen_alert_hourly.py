#!/usr/bin/env python3
"""Generates the dashboard roll-ups for both backends from one description, so the two backends
and the backfill/trigger/rebuild statements cannot disagree:

- migration 0016 (`alert_hourly`: per hour, tenant and source) and its rebuild SQL
  (crates/store/src/sql/alert_hourly_backfill.*.sql);
- migration 0021 (`alert_hourly_tags`: the same numbers per tenant, hour, source and tag set,
  for callers that tag rules restrict) and its rebuild SQL
  (crates/store/src/sql/alert_hourly_tags_backfill.*.sql).

Run from anywhere: python3 scripts/gen_alert_hourly.py. A released migration must not change:
the output for 0016 must stay byte for byte what it was (git diff shows it); change the
description only together with a new migration."""
import os
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEV = ["critical", "high", "medium", "low", "info"]
ST = ["new", "triaged", "in_progress", "escalated", "resolved", "false_positive"]
CLOSED = "('resolved', 'false_positive')"
COLS = [f"sev_{s}" for s in SEV] + [f"st_{s}" for s in ST] + ["ack_n", "ack_seconds", "res_n", "res_seconds"]


class Rollup:
    """One roll-up table: its name, its key columns in primary-key order (`h` is the hour),
    and the alert columns it is also keyed by besides tenant and source."""
    def __init__(self, name, key, extra, watched):
        self.name, self.key, self.extra, self.watched = name, key, extra, watched


WATCHED = ["first_seen", "tenant_id", "source", "severity", "status", "deleted_at", "acknowledged_at", "closed_at"]
# The 0016 table: (hour, tenant_id, source).
HOURLY = Rollup("alert_hourly", ["hour", "tenant_id", "source"], [], WATCHED)
# The 0021 table: tenant first (a restricted caller reads one tenant's hours), and the
# alert's `tags` exactly as stored, so the tag rules read it as they read `alerts.tags`.
TAGS = Rollup("alert_hourly_tags", ["tenant_id", "hour", "source", "tags"], ["tags"], WATCHED + ["tags"])


def contribs(r, sign, db, t=HOURLY, where_extra=""):
    """SELECTs giving (h, tenant_id, source, extra keys..., cols...) rows for one alert row `r`
    (OLD/NEW in triggers, `alerts` in the backfill)."""
    if db == "sqlite":
        hour = lambda x: f"CAST(strftime('%s', {x}) AS INTEGER)"  # seconds; floored to hours outside
        secs = lambda a, b: f"((julianday({b}) - julianday({a})) * 86400.0)"
        real0 = "0.0"
    else:
        hour = lambda x: f"floor(extract(epoch FROM {x}) / 3600)::bigint"
        secs = lambda a, b: f"extract(epoch FROM ({b} - {a}))::double precision"
        real0 = "0.0::double precision"
    sg = "" if sign > 0 else "-"
    base = f"{r}.deleted_at IS NULL{where_extra}"
    def row(hexpr, vals, cond):
        parts = [f"{hexpr} AS h", f"{r}.tenant_id AS tenant_id", f"{r}.source AS source"]
        parts += [f"{r}.{k} AS {k}" for k in t.extra]
        for c in COLS:
            parts.append(f"{vals.get(c, real0 if c.endswith('seconds') else '0')} AS {c}")
        frm = f" FROM alerts" if r == "alerts" else ""
        return "SELECT " + ", ".join(parts) + frm + f" WHERE {cond}"
    cnt = lambda cond: f"{sg}(CASE WHEN {cond} THEN 1 ELSE 0 END)"
    v1 = {f"sev_{s}": cnt(f"{r}.severity = '{s}'") for s in SEV}
    v1.update({f"st_{s}": cnt(f"{r}.status = '{s}'") for s in ST})
    v2 = {"ack_n": f"{sg}1", "ack_seconds": f"{sg}{secs(r+'.first_seen', r+'.acknowledged_at')}"}
    v3 = {"res_n": f"{sg}1", "res_seconds": f"{sg}{secs(r+'.first_seen', r+'.closed_at')}"}
    return [
        row(hour(f"{r}.first_seen"), v1, base),
        row(hour(f"{r}.acknowledged_at"), v2, f"{base} AND {r}.acknowledged_at IS NOT NULL"),
        row(hour(f"{r}.closed_at"), v3, f"{base} AND {r}.closed_at IS NOT NULL AND {r}.status IN {CLOSED}"),
    ]

def upsert(selects, db, t=HOURLY):
    inner = "\n    UNION ALL ".join(selects)
    if db == "sqlite":
        # seconds -> hour index, floored (also before 1970)
        hsel = "h / 3600 - (h % 3600 < 0)"
    else:
        hsel = "h"
    sums = ", ".join(f"SUM({c})" for c in COLS)
    sets = ", ".join(f"{c} = {t.name}.{c} + excluded.{c}" for c in COLS)
    sel = ", ".join(f"{hsel} AS hh" if k == "hour" else k for k in t.key)
    n = ", ".join(str(i + 1) for i in range(len(t.key)))
    return (f"INSERT INTO {t.name} ({', '.join(t.key)}, {', '.join(COLS)})\n"
            f"SELECT {sel}, {sums} FROM (\n    {inner}\n) c\n"
            f"GROUP BY {n} ORDER BY {n}\n"
            f"ON CONFLICT ({', '.join(t.key)}) DO UPDATE SET {sets}")

def table(db, t=HOURLY):
    types = {
        "sqlite": {"hour": "INTEGER", "tenant_id": "BLOB", "source": "TEXT", "tags": "TEXT"},
        "postgres": {"hour": "bigint", "tenant_id": "uuid", "source": "text", "tags": "jsonb"},
    }[db]
    keys = "".join(f"    {k} {types[k]} NOT NULL,\n" for k in t.key)
    if db == "sqlite":
        cols = ",\n".join(f"    {c} {'REAL' if c.endswith('seconds') else 'INTEGER'} NOT NULL DEFAULT 0" for c in COLS)
        return (f"CREATE TABLE {t.name} (\n{keys}{cols},\n"
                f"    PRIMARY KEY ({', '.join(t.key)})\n) STRICT, WITHOUT ROWID;\n")
    cols = ",\n".join(f"    {c} {'double precision' if c.endswith('seconds') else 'bigint'} NOT NULL DEFAULT 0" for c in COLS)
    return (f"CREATE TABLE {t.name} (\n{keys}{cols},\n"
            f"    PRIMARY KEY ({', '.join(t.key)})\n);\n")

def triggers(db, t, upd, dele, fn_upd, fn_del):
    """The update and delete triggers of roll-up `t` (trigger names `upd`/`dele`, PostgreSQL
    functions `fn_upd`/`fn_del`)."""
    out = []
    w = t.watched
    when = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" if db == "postgres" else f"OLD.{c} IS NOT NEW.{c}" for c in w)
    if db == "sqlite":
        out.append(f"CREATE TRIGGER {upd} AFTER UPDATE OF {', '.join(w)} ON alerts\nWHEN {when}\nBEGIN\n"
                   + upsert(contribs("OLD", -1, db, t) + contribs("NEW", 1, db, t), db, t) + ";\nEND;\n")
        out.append(f"CREATE TRIGGER {dele} AFTER DELETE ON alerts\nBEGIN\n"
                   + upsert(contribs("OLD", -1, db, t), db, t) + ";\nEND;\n")
    else:
        out.append(f"CREATE FUNCTION {fn_upd}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                   + upsert(contribs("OLD", -1, db, t) + contribs("NEW", 1, db, t), db, t) + ";\nRETURN NULL;\nEND $$;\n")
        out.append(f"CREATE FUNCTION {fn_del}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                   + upsert(contribs("OLD", -1, db, t), db, t) + ";\nRETURN NULL;\nEND $$;\n")
        out.append(f"CREATE TRIGGER {upd} AFTER UPDATE OF {', '.join(w)} ON alerts\nFOR EACH ROW WHEN ({when})\nEXECUTE FUNCTION {fn_upd}();\n")
        out.append(f"CREATE TRIGGER {dele} AFTER DELETE ON alerts\nFOR EACH ROW EXECUTE FUNCTION {fn_del}();\n")
    return out

HEADER = """-- Dashboard roll-ups (issue 8): per UTC hour, tenant and source, the alerts first seen in the
-- hour by severity and by current status, and the acknowledgements and closures made in the hour
-- (count and summed seconds since first_seen, for MTTA / MTTR), over alerts not deleted.
-- `hour` is hours since 1970-01-01T00:00Z, floored. Ingestion adds its new alerts with one
-- aggregated upsert per batch (duplicates change none of these numbers); every other change
-- (triage: status, severity, acknowledgement, closing, deletion; and any direct UPDATE or
-- DELETE) is applied by the row triggers below, in the transaction of the change, so the roll-up
-- never drifts from the alerts. Definitions: docs/dashboard.md.
"""

HEADER_TAGS = """-- Dashboard roll-up per tag set (issue 8, docs/decisions/0008-dashboard-rollup-per-tag-set.md):
-- the numbers of `alert_hourly` (migration 0016), also keyed by the alert's `tags` exactly as
-- stored in `alerts.tags`, so that a caller whom tag rules restrict gets the whole hours of a
-- range summed over the tag sets they may see, by the same SQL predicate the alert queries use
-- (`push_alert_access`, which reads `tenant_id` and `tags`). Kept exactly like `alert_hourly`:
-- ingestion adds its new alerts with one aggregated upsert per batch (right after the
-- `alert_hourly` one); the row triggers below apply every other change, including a change of
-- `tags` (the alert's counts move from its old tag set to its new one). Trigger names sort
-- after the 0016 ones, so on PostgreSQL a change locks `alert_hourly` rows first, as
-- ingestion does. Generated by scripts/gen_alert_hourly.py.
"""

for db in ["sqlite", "postgres"]:
    out = [HEADER, table(db)]
    out.append("-- Backfill: the alerts already stored.\n" + upsert(contribs("alerts", 1, db), db) + ";\n")
    out += triggers(db, HOURLY, "alert_hourly_update", "alert_hourly_delete", "alert_hourly_update", "alert_hourly_delete")
    open(ROOT + f"/crates/store/migrations/{db}/0016_alert_hourly.sql", "w").write("\n".join(out))

    out = [HEADER_TAGS, table(db, TAGS)]
    out.append("-- Backfill: the alerts already stored.\n" + upsert(contribs("alerts", 1, db, TAGS), db, TAGS) + ";\n")
    out += triggers(db, TAGS, "alert_hourly_update_tags", "alert_hourly_delete_tags",
                    "alert_hourly_tags_update", "alert_hourly_tags_delete")
    open(ROOT + f"/crates/store/migrations/{db}/0021_alert_hourly_tags.sql", "w").write("\n".join(out))

os.makedirs(ROOT + "/crates/store/src/sql", exist_ok=True)
for db in ["sqlite", "postgres"]:
    open(ROOT + f"/crates/store/src/sql/alert_hourly_backfill.{db}.sql", "w").write(
        "-- Rebuilds the dashboard roll-up from the alerts (as migration 0016 filled it); run after\n"
        "-- DELETE FROM alert_hourly, in one transaction. Generated with migration 0016.\n"
        + upsert(contribs("alerts", 1, db), db) + "\n")
    open(ROOT + f"/crates/store/src/sql/alert_hourly_tags_backfill.{db}.sql", "w").write(
        "-- Rebuilds the per-tag-set dashboard roll-up from the alerts (as migration 0021 filled it);\n"
        "-- run after DELETE FROM alert_hourly_tags, in one transaction. Generated with migration 0021.\n"
        + upsert(contribs("alerts", 1, db, TAGS), db, TAGS) + "\n")
