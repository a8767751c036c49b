-- tessera:no-transaction
-- Events by actor, newest first (see 0008).
CREATE INDEX CONCURRENTLY audit_events_actor_id ON audit_events (actor, id DESC);
