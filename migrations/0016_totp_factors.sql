-- A user's authenticator app (TOTP, RFC 6238): at most one per account.
--
-- secret_sealed is the TOTP key encrypted at rest (AES-256-GCM, src/second-factors/secret-box.ts),
-- never the key itself. A row with confirmed_at null is an enrolment in progress: it is not asked
-- for at sign-in until the user has typed one code from the app, which confirms it.
--
-- last_step is the newest time step (30-second window since the epoch) whose code was accepted.
-- A code is accepted only by `UPDATE … SET last_step = $step WHERE … AND last_step < $step`, so
-- each step's code (and every older one) works once per account, even with many nodes or
-- concurrent requests (test/integration/second-factor-store.test.ts races it).
CREATE TABLE totp_factors (
  user_id       uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  secret_sealed text        NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  confirmed_at  timestamptz,
  last_step     bigint      NOT NULL DEFAULT 0,
  last_used_at  timestamptz,
  CONSTRAINT totp_factors_sealed_format CHECK (secret_sealed ~ '^v1\.')
);
