-- Personal access tokens: long-lived credentials a user creates for scripts (`tsr_pat_…`, see
-- src/tokens/token-format.ts), each limited to some of the user's allowed scopes.
--
-- Only the digest of a token is stored: token_digest is the SHA-256 of the whole value, in
-- base64url (43 characters), which is what a presented token is looked up by. The value itself is
-- shown once at creation and never stored; token_hint (the prefix and the first 4 random
-- characters) lets people recognise a token in a list.
--
-- created_at and expires_at are both written by the service from one clock, so that
-- expires_at - created_at is the lifetime the user chose (a rotation keeps it). expires_at null:
-- the token never expires (only when the operator allows it). A revoked token keeps its row, with
-- revoked_at set, for the user's list and the audit trail; revoking is
-- `UPDATE … WHERE revoked_at IS NULL`, so of concurrent revocations exactly one succeeds.
CREATE TABLE personal_tokens (
  id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         text        NOT NULL,
  token_digest text        NOT NULL,
  token_hint   text        NOT NULL,
  scopes       text[]      NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  last_used_at timestamptz,
  last_used_ip text,
  revoked_at   timestamptz,
  CONSTRAINT personal_tokens_digest_unique UNIQUE (token_digest),
  CONSTRAINT personal_tokens_digest_format CHECK (token_digest ~ '^[A-Za-z0-9_-]{43}$'),
  CONSTRAINT personal_tokens_hint_format CHECK (token_hint ~ '^tsr_pat_[0-9A-Za-z]{4}$'),
  CONSTRAINT personal_tokens_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
  CONSTRAINT personal_tokens_scopes_present CHECK (cardinality(scopes) > 0),
  CONSTRAINT personal_tokens_expiry_after_creation CHECK (expires_at IS NULL OR expires_at > created_at)
);

-- A user's list, newest first.
CREATE INDEX personal_tokens_user_created ON personal_tokens (user_id, created_at DESC);
