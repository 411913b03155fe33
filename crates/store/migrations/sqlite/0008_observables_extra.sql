-- Dashboard and observables: alerts by first_seen range (dashboard counts and series, the
-- queue's since/until filters), and by acknowledgement / closing time (mean time to acknowledge
-- and to resolve). The last two are partial: alerts are inserted without either, so ingestion
-- does not maintain them.
CREATE INDEX alerts_first_seen ON alerts (first_seen);
CREATE INDEX alerts_acknowledged_at ON alerts (acknowledged_at) WHERE acknowledged_at IS NOT NULL;
CREATE INDEX alerts_closed_at ON alerts (closed_at) WHERE closed_at IS NOT NULL;
