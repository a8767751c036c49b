-- A service client (client credentials) may be granted introspection, so that a backend that both
-- calls APIs and checks tokens needs one registration. Off unless granted: resource servers always
-- may introspect (their kind says so), no other kind may be granted it.
ALTER TABLE clients ADD COLUMN may_introspect boolean NOT NULL DEFAULT false;
ALTER TABLE clients ADD CONSTRAINT clients_may_introspect_by_kind CHECK (NOT may_introspect OR kind = 'service');
