-- tessera:no-transaction
-- Time ranges (since, until) over the whole log (see 0008).
CREATE INDEX CONCURRENTLY audit_events_occurred_at ON audit_events (occurred_at);
