-- Sent events are deleted once past their retention (settings
-- outbox_retention_hours); this finds the old ones.
CREATE INDEX outbox_created ON outbox (created_at);
