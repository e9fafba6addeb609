-- What the assessment (docs/ASSESSMENT.md) reads from each event, so that
-- a period's figures follow from the event log alone and recomputing a
-- closed month gives the same numbers: the unit the case is with and the
-- handling deadline in force once the event is recorded, and a callback's
-- verdict (solved, satisfaction). Events recorded before this migration
-- have none of them; the assessment then falls back to the case's own.
ALTER TABLE case_events
    ADD COLUMN unit         text,
    ADD COLUMN due_at       timestamptz,
    ADD COLUMN solved       boolean,
    ADD COLUMN satisfaction text;

-- The assessment's periods are the hub's intake days.
CREATE INDEX cases_created_at ON cases (created_at);
