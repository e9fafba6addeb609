-- See migrations/0018_extensions_suspensions.sql.
ALTER TABLE cases ADD COLUMN pending_request TEXT;
ALTER TABLE cases ADD COLUMN suspended_at TEXT;
