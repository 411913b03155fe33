-- Tamper-evident audit log (see docs/audit.md). `record` holds the canonical bytes exactly as
-- hashed; the other columns are copies for querying and are not trusted by verification.
CREATE TABLE audit_log (
    tenant_id    uuid NOT NULL,
    seq          bigint NOT NULL,
    ts           timestamptz NOT NULL,
    event_type   text NOT NULL,
    actor_kind   text NOT NULL,
    actor_id     text,
    target_kind  text NOT NULL,
    target_id    text,
    record       bytea NOT NULL,
    hash         bytea NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_log_ts ON audit_log (tenant_id, ts);

CREATE FUNCTION bulwark_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION bulwark_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION bulwark_append_only();

CREATE TABLE audit_heads (
    tenant_id  uuid PRIMARY KEY,
    seq        bigint NOT NULL,
    hash       bytea NOT NULL
);

CREATE TABLE audit_checkpoints (
    tenant_id  uuid NOT NULL,
    seq        bigint NOT NULL,
    signed     text NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION bulwark_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION bulwark_append_only();
