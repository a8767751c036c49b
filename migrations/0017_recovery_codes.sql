-- One-time recovery codes of an account with a second factor: shown once when made, kept only as
-- SHA-256 digests (base64url). A code is spent by
-- `UPDATE … SET used_at = now() WHERE … AND used_at IS NULL RETURNING`, so of concurrent uses of
-- one code exactly one succeeds. Making a new set deletes the old one.
CREATE TABLE recovery_codes (
  user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  code_digest text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  used_at     timestamptz,
  PRIMARY KEY (user_id, code_digest),
  CONSTRAINT recovery_codes_digest_format CHECK (code_digest ~ '^[A-Za-z0-9_-]{43}$')
);
