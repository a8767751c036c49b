-- tessera:no-transaction
-- Events on a user's credentials name the user in details.userId (see 0008).
CREATE INDEX CONCURRENTLY audit_events_user_id ON audit_events ((details->>'userId'), id DESC) WHERE details->>'userId' IS NOT NULL;
