-- tessera:no-transaction
-- Events by action, exact or by prefix (LIKE 'sign_in.%' needs text_pattern_ops), newest first (see 0008).
CREATE INDEX CONCURRENTLY audit_events_action_id ON audit_events (action text_pattern_ops, id DESC);
