-- Sent events are deleted once past their retention (settings
-- outbox_retention_hours). Rows are appended in created_at order, so a BRIN
-- index finds the old ones for a few pages of index, and costs the insert
-- path almost nothing.
CREATE INDEX outbox_created ON outbox USING brin (created_at);
