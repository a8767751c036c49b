-- A registered client's token-exchange policy (RFC 8693; docs/token-exchange.md): which kinds of a
-- person's credentials it may exchange, for which audiences and scopes. Null: it may not exchange.
-- Validated by the service against the scope catalog and resources, which live in the configuration.
ALTER TABLE clients ADD COLUMN token_exchange jsonb;
ALTER TABLE clients ADD CONSTRAINT clients_token_exchange_by_kind CHECK (token_exchange IS NULL OR kind <> 'device');
