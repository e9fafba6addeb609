-- See migrations/0019_assessment_facts.sql.
ALTER TABLE case_events ADD COLUMN unit TEXT;
ALTER TABLE case_events ADD COLUMN due_at TEXT;
ALTER TABLE case_events ADD COLUMN solved BOOLEAN;
ALTER TABLE case_events ADD COLUMN satisfaction TEXT;
CREATE INDEX cases_created_at ON cases (created_at);
