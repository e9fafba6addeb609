-- See migrations/0012_sealed_reporters.sql.
ALTER TABLE reporters ADD COLUMN phone_hash TEXT;
CREATE INDEX reporters_phone_hash ON reporters (phone_hash) WHERE phone_hash IS NOT NULL;
