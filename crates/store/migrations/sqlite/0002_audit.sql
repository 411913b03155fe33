-- Tamper-evident audit log (see docs/audit.md). `record` holds the canonical bytes exactly as
-- hashed; the other columns are copies for querying and are not trusted by verification.
CREATE TABLE audit_log (
    tenant_id    BLOB NOT NULL,
    seq          INTEGER NOT NULL,
    ts           TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT,
    target_kind  TEXT NOT NULL,
    target_id    TEXT,
    record       BLOB NOT NULL,
    hash         BLOB NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX audit_log_ts ON audit_log (tenant_id, ts);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- The head of each tenant's chain, updated in the same transaction as each append.
CREATE TABLE audit_heads (
    tenant_id  BLOB PRIMARY KEY NOT NULL,
    seq        INTEGER NOT NULL,
    hash       BLOB NOT NULL
) STRICT;

-- Signed checkpoints (Ed25519, key outside the database). Append-only too.
CREATE TABLE audit_checkpoints (
    tenant_id  BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    signed     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) STRICT;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
