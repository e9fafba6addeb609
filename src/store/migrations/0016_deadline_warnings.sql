-- The lead unit is warned once when a share of its handling time has
-- passed (deadlines.warn_at); a re-dispatch starts the count again.
ALTER TABLE cases ADD COLUMN deadline_warned boolean NOT NULL DEFAULT false;
