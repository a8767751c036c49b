-- What happened to accounts and credentials, for operators and for each user's security page.
-- actor and subject are free text ("user:<id>", "cli:root", "client:<id>") so that events
-- outlive the rows they mention.
CREATE TABLE audit_events (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  actor       text        NOT NULL,
  action      text        NOT NULL,
  subject     text,
  ip          text,
  user_agent  text,
  details     jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX audit_events_subject_time ON audit_events (subject, occurred_at DESC);
CREATE INDEX audit_events_actor_time ON audit_events (actor, occurred_at DESC);
