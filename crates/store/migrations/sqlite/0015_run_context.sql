-- A run's trigger context (the alert or incident it started from, its input) is written once,
-- on the run's first save, instead of inside every saved state: it is most of the state's
-- size and never changes. Older rows keep it inside `state` (context NULL).
ALTER TABLE playbook_runs ADD COLUMN context TEXT;
