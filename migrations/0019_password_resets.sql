-- Password-reset links sent by e-mail. Only the SHA-256 of a link's token is kept. A link is used
-- once (consumed_at, set by one UPDATE … WHERE consumed_at IS NULL), ends at expires_at, and is
-- void once the account's password changes (password_changed_at is the account's at issue).
CREATE TABLE password_resets (
  id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id             uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_sha256        text        NOT NULL UNIQUE,
  password_changed_at timestamptz NOT NULL,
  created_at          timestamptz NOT NULL,
  expires_at          timestamptz NOT NULL,
  consumed_at         timestamptz
);

CREATE INDEX password_resets_user ON password_resets (user_id);
