-- tessera:no-transaction
-- Events on a client's tokens name the client in details.clientId (see 0008).
CREATE INDEX CONCURRENTLY audit_events_client_id ON audit_events ((details->>'clientId'), id DESC) WHERE details->>'clientId' IS NOT NULL;
