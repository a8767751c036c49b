-- Replaced by the id-ordered indexes of 0008 and 0009: every reader now pages by id.
DROP INDEX IF EXISTS audit_events_subject_time;
DROP INDEX IF EXISTS audit_events_actor_time;
