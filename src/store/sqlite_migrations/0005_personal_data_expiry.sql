-- See migrations/0010_personal_data_expiry.sql.
ALTER TABLE reporters ADD COLUMN erased_at TEXT;
