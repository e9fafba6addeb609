-- Reporters' name, phone and ID number are stored sealed (store/seal.rs)
-- when keys are configured; earlier cases from the same caller are found
-- by this keyed hash of the phone's digits, never by the plaintext.
ALTER TABLE reporters ADD COLUMN phone_hash text;
CREATE INDEX reporters_phone_hash ON reporters (phone_hash) WHERE phone_hash IS NOT NULL;
