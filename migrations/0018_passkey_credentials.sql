-- Passkeys (WebAuthn credentials) registered as second factors: the credential id the
-- authenticator gives (base64url) and its PUBLIC key (COSE, base64url), never anything secret.
-- sign_count is the authenticator's signature counter; an assertion is accepted only by
-- `UPDATE … WHERE sign_count < $new OR $new = 0` (authenticators that keep no counter report 0),
-- so a cloned authenticator replaying an older count is refused.
CREATE TABLE passkey_credentials (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  credential_id text        NOT NULL,
  public_key    text        NOT NULL,
  sign_count    bigint      NOT NULL DEFAULT 0,
  transports    text[]      NOT NULL DEFAULT ARRAY[]::text[],
  name          text        NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  CONSTRAINT passkey_credentials_credential_unique UNIQUE (credential_id),
  CONSTRAINT passkey_credentials_name_length CHECK (char_length(name) BETWEEN 1 AND 60)
);

CREATE INDEX passkey_credentials_user ON passkey_credentials (user_id, created_at);
