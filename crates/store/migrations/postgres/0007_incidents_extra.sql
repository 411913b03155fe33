-- Incident management, beyond 0006: timeline rows about one alert name it (so a caller who
-- cannot see that alert does not see the row either), and indexes for the timeline's
-- time-ordered keyset pages.
ALTER TABLE incident_events ADD COLUMN alert_id uuid;
CREATE INDEX incident_events_incident_time ON incident_events (incident_id, created_at, id);
CREATE INDEX alert_activities_alert_time ON alert_activities (alert_id, created_at, id);
CREATE INDEX comments_incident_time ON comments (incident_id, created_at, id) WHERE incident_id IS NOT NULL;
