-- The callback loop (回访): when the hotline is asked to call the reporter
-- back and by when, whether that deadline has passed, and a callback result
-- kept while the grid still verifies the result on site (applied when the
-- verification passes, dropped when it fails).
ALTER TABLE cases
    ADD COLUMN callback_due_at timestamptz,
    ADD COLUMN callback_overdue boolean NOT NULL DEFAULT false,
    ADD COLUMN held_callback jsonb;
CREATE INDEX cases_callback_due ON cases (callback_due_at) WHERE status = 'callback';
