-- tessera:no-transaction
-- The audit query service (src/audit/audit-query.ts) reads newest first by id. Built concurrently:
-- sign-ins write audit events, and a plain CREATE INDEX would hold them up for as long as it runs.
-- One statement a file: CREATE INDEX CONCURRENTLY cannot share a query with another.
CREATE INDEX CONCURRENTLY audit_events_subject_id ON audit_events (subject, id DESC);
