-- See migrations/0016_deadline_warnings.sql.
ALTER TABLE cases ADD COLUMN deadline_warned INTEGER NOT NULL DEFAULT 0;
