-- See migrations/0011_audit_origin.sql.
ALTER TABLE dlq_audit ADD COLUMN origin TEXT;
