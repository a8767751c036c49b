-- Accounts from upstream identity providers (docs/sign-in-providers.md): each row links one
-- identity (the provider's id in Tessera's configuration and the subject it gives, `sub`) to one
-- account. An identity belongs to exactly one account; an account may have several. An account
-- made by a provider has no local password, so password_hash becomes optional.
CREATE TABLE user_identities (
  provider     text        NOT NULL,
  subject      text        NOT NULL,
  user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- The e-mail the provider gave at the last sign-in, verified by it, shown to the user and admins only.
  email        text,
  linked_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  PRIMARY KEY (provider, subject),
  CONSTRAINT user_identities_subject_length CHECK (length(subject) BETWEEN 1 AND 255)
);

CREATE INDEX user_identities_user ON user_identities (user_id);

ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
