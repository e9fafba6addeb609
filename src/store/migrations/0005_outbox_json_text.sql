-- The outbox keeps each event as the JSON text the hub wrote, not as jsonb:
-- the relay publishes that text as it is, so the binary form only cost a
-- parse on every insert and a rendering on every claim.
ALTER TABLE outbox ALTER COLUMN payload TYPE json USING payload::json;
