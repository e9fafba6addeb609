-- See migrations/0013_sealed_dead_letters.sql.
ALTER TABLE dlq_messages ADD COLUMN sealed_with TEXT;
