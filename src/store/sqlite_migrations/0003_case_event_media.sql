-- A step can carry photos and files of what was done (a response's 办结照片),
-- and a step the district centre's desk records for a unit that has no
-- system of its own names that unit (on_behalf_of) beside the desk's actor.
ALTER TABLE case_events ADD COLUMN media TEXT;
ALTER TABLE case_events ADD COLUMN on_behalf_of TEXT;
