-- Audit trail of every dead-letter operation: who did what, when, to how
-- many. Append-only; bodies and personal data are never written here.
CREATE TABLE dlq_audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    -- `token:<name>` for the API and console, `cli:<user>` for the CLI.
    actor      text NOT NULL,
    -- replay | edit-replay | purge | purge-requested
    action     text NOT NULL,
    -- The filter the operation used (connector, stage, reason, time range,
    -- group, id), as given.
    filter     jsonb NOT NULL DEFAULT '{}',
    -- Messages the operation completed, and those it had to leave in place.
    affected   integer NOT NULL,
    failed     integer NOT NULL DEFAULT 0,
    -- message_ids touched (at most 1000 kept).
    message_ids text[] NOT NULL DEFAULT '{}',
    note       text
);

CREATE INDEX dlq_audit_at ON dlq_audit (at DESC);
