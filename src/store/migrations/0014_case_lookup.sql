-- Finding a case by a ticket id alone (a hotline operator rarely knows
-- which connector a number came through).
CREATE INDEX case_sources_ref ON case_sources (source_ref);
