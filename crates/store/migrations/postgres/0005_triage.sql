-- Triage fields of alerts (the lifecycle itself is in bulwark-core's `triage` module).
ALTER TABLE alerts ADD COLUMN description text;
ALTER TABLE alerts ADD COLUMN determination text;
ALTER TABLE alerts ADD COLUMN resolve_reason text;
ALTER TABLE alerts ADD COLUMN assignee_id uuid;
ALTER TABLE alerts ADD COLUMN tags jsonb NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN acknowledged_at timestamptz;
ALTER TABLE alerts ADD COLUMN closed_at timestamptz;
ALTER TABLE alerts ADD COLUMN deleted_at timestamptz;
CREATE INDEX alerts_tenant_status ON alerts (tenant_id, status, id);
CREATE INDEX alerts_tenant_severity ON alerts (tenant_id, severity, id);
