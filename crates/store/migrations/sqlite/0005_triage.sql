-- Triage fields of alerts (the lifecycle itself is in bulwark-core's `triage` module).
ALTER TABLE alerts ADD COLUMN description TEXT;
ALTER TABLE alerts ADD COLUMN determination TEXT;
ALTER TABLE alerts ADD COLUMN resolve_reason TEXT;
ALTER TABLE alerts ADD COLUMN assignee_id BLOB;
ALTER TABLE alerts ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN acknowledged_at TEXT;
ALTER TABLE alerts ADD COLUMN closed_at TEXT;
ALTER TABLE alerts ADD COLUMN deleted_at TEXT;
CREATE INDEX alerts_tenant_status ON alerts (tenant_id, status, id);
CREATE INDEX alerts_tenant_severity ON alerts (tenant_id, severity, id);
