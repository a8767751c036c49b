-- Keys that sign tokens (JWT access tokens, ID tokens), published at the issuer's jwks_uri.
--
-- Lifecycle of a key:
--   current   retire_after IS NULL. It signs everything new. At most one key is current (the
--             unique index below); Tessera creates the first one at start (src/oauth/signing-keys.ts).
--   retiring  `tessera keys rotate` adds a new current key and sets retire_after on the old one to
--             now + the longest lifetime of a token it may have signed. It no longer signs, but
--             stays published so that those tokens still verify.
--   gone      once retire_after has passed the key is no longer published and the next rotation
--             (or start) deletes the row.
--
-- kid is the RFC 7638 thumbprint of the public key. The private JWK is stored only encrypted
-- (AES-256-GCM under a key derived from TESSERA_KEY_SECRET, the kid as associated data), as
-- "v1.<iv>.<ciphertext>.<tag>" in base64url; the public JWK is stored in clear for publishing.
CREATE TABLE signing_keys (
  kid                   text        PRIMARY KEY,
  alg                   text        NOT NULL,
  public_jwk            jsonb       NOT NULL,
  encrypted_private_jwk text        NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  activated_at          timestamptz NOT NULL DEFAULT now(),
  retire_after          timestamptz
);

CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retire_after IS NULL)) WHERE retire_after IS NULL;
