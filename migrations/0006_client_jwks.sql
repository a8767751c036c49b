-- Clients that authenticate with private_key_jwt (RFC 7523): instead of a secret, a client may
-- register the PUBLIC keys (a JWK Set) that verify the assertions it signs with its private key.
-- Tessera never holds the private key; the service refuses a JWK carrying private members, and so
-- does the table, as a last line of defence (a private key that reached an audit log or a backup
-- would have to be treated as leaked).
--
-- A client authenticates one way: device clients are public (neither a secret nor keys); every
-- other kind has exactly one of a secret digest or a key set.
ALTER TABLE clients ADD COLUMN jwks jsonb;
-- When the key set was last replaced; null while it is the one registered at creation.
ALTER TABLE clients ADD COLUMN keys_rotated_at timestamptz;

ALTER TABLE clients DROP CONSTRAINT clients_secret_by_kind;
ALTER TABLE clients ADD CONSTRAINT clients_credential_by_kind CHECK (
  CASE WHEN kind = 'device' THEN secret_sha256 IS NULL AND jwks IS NULL
       ELSE (secret_sha256 IS NULL) <> (jwks IS NULL)
  END
);
-- {"keys": [1 to 10 JWK objects]}. CASE fixes the order: jsonb_array_length fails on a non-array.
ALTER TABLE clients ADD CONSTRAINT clients_jwks_shape CHECK (
  jwks IS NULL OR CASE WHEN jsonb_typeof(jwks) = 'object' AND jsonb_typeof(jwks -> 'keys') = 'array'
                       THEN jsonb_array_length(jwks -> 'keys') BETWEEN 1 AND 10
                            AND NOT jsonb_path_exists(jwks, '$.keys[*] ? (@.type() != "object")')
                       ELSE false
                  END
);
ALTER TABLE clients ADD CONSTRAINT clients_jwks_public_only CHECK (
  jwks IS NULL OR NOT jsonb_path_exists(
    jwks,
    '$.keys[*] ? (exists(@.d) || exists(@.p) || exists(@.q) || exists(@.dp) || exists(@.dq) || exists(@.qi) || exists(@.oth) || exists(@.k))'
  )
);
