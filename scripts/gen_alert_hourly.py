#!/usr/bin/env python3
"""Generates migration 0016 (the dashboard roll-up: table, backfill, triggers) for both backends
and the rebuild SQL the store embeds, from one description, so the two backends and the
backfill/trigger/rebuild statements cannot disagree. Run from anywhere: python3 scripts/gen_alert_hourly.py.
A released migration must not change: edit this only together with a new migration."""
import os
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEV = ["critical", "high", "medium", "low", "info"]
ST = ["new", "triaged", "in_progress", "escalated", "resolved", "false_positive"]
CLOSED = "('resolved', 'false_positive')"
COLS = [f"sev_{s}" for s in SEV] + [f"st_{s}" for s in ST] + ["ack_n", "ack_seconds", "res_n", "res_seconds"]

def contribs(r, sign, db, where_extra=""):
    """SELECTs giving (h, tenant_id, source, cols...) rows for one alert row `r`
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

def upsert(selects, db):
    inner = "\n    UNION ALL ".join(selects)
    if db == "sqlite":
        # seconds -> hour index, floored (also before 1970)
        hsel = "h / 3600 - (h % 3600 < 0)"
    else:
        hsel = "h"
    sums = ", ".join(f"SUM({c})" for c in COLS)
    sets = ", ".join(f"{c} = alert_hourly.{c} + excluded.{c}" for c in COLS)
    return (f"INSERT INTO alert_hourly (hour, tenant_id, source, {', '.join(COLS)})\n"
            f"SELECT {hsel} AS hh, tenant_id, source, {sums} FROM (\n    {inner}\n) c\n"
            f"GROUP BY 1, 2, 3 ORDER BY 1, 2, 3\n"
            f"ON CONFLICT (hour, tenant_id, source) DO UPDATE SET {sets}")

def table(db):
    if db == "sqlite":
        cols = ",\n".join(f"    {c} {'REAL' if c.endswith('seconds') else 'INTEGER'} NOT NULL DEFAULT 0" for c in COLS)
        return (f"CREATE TABLE alert_hourly (\n    hour INTEGER NOT NULL,\n    tenant_id BLOB NOT NULL,\n    source TEXT NOT NULL,\n{cols},\n"
                f"    PRIMARY KEY (hour, tenant_id, source)\n) STRICT, WITHOUT ROWID;\n")
    cols = ",\n".join(f"    {c} {'double precision' if c.endswith('seconds') else 'bigint'} NOT NULL DEFAULT 0" for c in COLS)
    return (f"CREATE TABLE alert_hourly (\n    hour bigint NOT NULL,\n    tenant_id uuid NOT NULL,\n    source text NOT NULL,\n{cols},\n"
            f"    PRIMARY KEY (hour, tenant_id, source)\n);\n")

WATCHED = ["first_seen", "tenant_id", "source", "severity", "status", "deleted_at", "acknowledged_at", "closed_at"]

HEADER = """-- Dashboard roll-ups (issue 8): per UTC hour, tenant and source, the alerts first seen in the
-- hour by severity and by current status, and the acknowledgements and closures made in the hour
-- (count and summed seconds since first_seen, for MTTA / MTTR), over alerts not deleted.
-- `hour` is hours since 1970-01-01T00:00Z, floored. Ingestion adds its new alerts with one
-- aggregated upsert per batch (duplicates change none of these numbers); every other change
-- (triage: status, severity, acknowledgement, closing, deletion; and any direct UPDATE or
-- DELETE) is applied by the row triggers below, in the transaction of the change, so the roll-up
-- never drifts from the alerts. Definitions: docs/dashboard.md.
"""

for db in ["sqlite", "postgres"]:
    out = [HEADER, table(db)]
    out.append("-- Backfill: the alerts already stored.\n" + upsert(contribs("alerts", 1, db), db) + ";\n")
    when = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" if db == "postgres" else f"OLD.{c} IS NOT NEW.{c}" for c in WATCHED)
    if db == "sqlite":
        out.append(f"CREATE TRIGGER alert_hourly_update AFTER UPDATE OF {', '.join(WATCHED)} ON alerts\nWHEN {when}\nBEGIN\n"
                   + upsert(contribs("OLD", -1, db) + contribs("NEW", 1, db), db) + ";\nEND;\n")
        out.append("CREATE TRIGGER alert_hourly_delete AFTER DELETE ON alerts\nBEGIN\n"
                   + upsert(contribs("OLD", -1, db), db) + ";\nEND;\n")
    else:
        out.append("CREATE FUNCTION alert_hourly_update() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                   + upsert(contribs("OLD", -1, db) + contribs("NEW", 1, db), db) + ";\nRETURN NULL;\nEND $$;\n")
        out.append("CREATE FUNCTION alert_hourly_delete() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
                   + upsert(contribs("OLD", -1, db), db) + ";\nRETURN NULL;\nEND $$;\n")
        out.append(f"CREATE TRIGGER alert_hourly_update AFTER UPDATE OF {', '.join(WATCHED)} ON alerts\nFOR EACH ROW WHEN ({when})\nEXECUTE FUNCTION alert_hourly_update();\n")
        out.append("CREATE TRIGGER alert_hourly_delete AFTER DELETE ON alerts\nFOR EACH ROW EXECUTE FUNCTION alert_hourly_delete();\n")
    open(ROOT + f"/crates/store/migrations/{db}/0016_alert_hourly.sql", "w").write("\n".join(out))

import os
os.makedirs(ROOT + "/crates/store/src/sql", exist_ok=True)
for db in ["sqlite", "postgres"]:
    open(ROOT + f"/crates/store/src/sql/alert_hourly_backfill.{db}.sql", "w").write(
        "-- Rebuilds the dashboard roll-up from the alerts (as migration 0016 filled it); run after\n"
        "-- DELETE FROM alert_hourly, in one transaction. Generated with migration 0016.\n"
        + upsert(contribs("alerts", 1, db), db) + "\n")
