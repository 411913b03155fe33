-- The observable list across tenants (what a platform admin opens): newest or most seen first.
-- Without these, every observable was read and sorted for a page of 50 (250,000 observables:
-- 72 ms median, 155 ms p99). The id breaks ties as the list's keyset cursor does.
CREATE INDEX observables_last_seen ON observables (last_seen, id);
CREATE INDEX observables_sightings ON observables (sightings, id);
