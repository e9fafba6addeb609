-- See migrations/0014_case_lookup.sql.
CREATE INDEX case_sources_ref ON case_sources (source_ref);
