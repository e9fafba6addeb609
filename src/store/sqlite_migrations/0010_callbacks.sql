-- See migrations/0015_callbacks.sql.
ALTER TABLE cases ADD COLUMN callback_due_at TEXT;
ALTER TABLE cases ADD COLUMN callback_overdue INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN held_callback TEXT;
CREATE INDEX cases_callback_due ON cases (callback_due_at) WHERE status = 'callback';
