-- tessera:no-transaction
-- Events by actor, newest first (see 0008).
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_events_actor_id ON audit_events (actor, id DESC);
