-- Dead letters' bodies (raw payloads: names, phone and ID numbers,
-- population pages) are stored sealed when keys are configured
-- (store/seal.rs): the id of the key they are sealed with, NULL for a body
-- stored as it came.
ALTER TABLE dlq_messages ADD COLUMN sealed_with text;
