-- A lead unit's request for more time (延期申请) or a suspension (挂起申请),
-- waiting for the centre: {"action", "days", "reason", "unit", "at"}.
-- Granted or declined, it is cleared; the case events keep the history.
-- A suspended case's clock stopped at suspended_at; resuming moves its
-- deadline by the time it stood.
ALTER TABLE cases
    ADD COLUMN pending_request jsonb,
    ADD COLUMN suspended_at timestamptz;
