-- The unified case store.

CREATE SEQUENCE case_no_seq;

-- One row per unified case. Personal data lives in reporters, not here.
CREATE TABLE cases (
    id               uuid PRIMARY KEY,
    -- Readable number for phone calls: TZ + yymmdd (Beijing) + sequence.
    case_no          text NOT NULL UNIQUE,
    status           text NOT NULL,
    channel          text NOT NULL,
    nature           text NOT NULL,
    category         text,
    priority         text NOT NULL,
    title            text NOT NULL,
    description      text NOT NULL DEFAULT '',
    attributes       jsonb NOT NULL DEFAULT '{}',
    media            jsonb NOT NULL DEFAULT '[]',
    -- Place as received, and where the hub located it.
    address          text,
    street_given     text,
    community_given  text,
    lon              double precision,
    lat              double precision,
    grid_id          text,
    community        text,
    street           text,
    located_by       text,
    -- Routing.
    lead_unit        text,
    assisting_units  text[] NOT NULL DEFAULT '{}',
    dispatch_level   text,
    routing_rule     text,
    -- Lifecycle.
    due_at           timestamptz,
    overdue          boolean NOT NULL DEFAULT false,
    escalation_level smallint NOT NULL DEFAULT 0,
    rework_count     integer NOT NULL DEFAULT 0,
    satisfaction     text,
    parent_case_id   uuid REFERENCES cases (id),
    received_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Bumped on every change; out-of-order updates compare against it.
    version          integer NOT NULL DEFAULT 1
);

CREATE INDEX cases_received_at ON cases (received_at DESC);
CREATE INDEX cases_status ON cases (status);

-- Each source's own ticket id, unique per connector. Written before the
-- case row in the same transaction (the foreign key is checked at commit),
-- so that a ticket already known creates no second case.
CREATE TABLE case_sources (
    connector   text NOT NULL,
    source_ref  text NOT NULL,
    case_id     uuid NOT NULL REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED,
    message_id  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connector, source_ref)
);

CREATE INDEX case_sources_case ON case_sources (case_id);

-- Personal data, kept apart from the case and never logged.
CREATE TABLE reporters (
    case_id          uuid NOT NULL REFERENCES cases (id),
    connector        text NOT NULL,
    name             text,
    phone            text,
    id_number        text,
    anonymous        boolean NOT NULL DEFAULT false,
    confidential     boolean NOT NULL DEFAULT false,
    callback_consent boolean NOT NULL DEFAULT false
);

CREATE INDEX reporters_case ON reporters (case_id);

-- Append-only audit trail of every change to a case.
CREATE TABLE case_events (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (id),
    kind        text NOT NULL,
    from_status text,
    to_status   text,
    actor       text NOT NULL,
    note        text,
    connector   text,
    message_id  text,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX case_events_case ON case_events (case_id, id);

-- One row per message the hub has finished with, keyed by its publisher's
-- message_id: written in the same transaction as the message's effect, so a
-- redelivered message is recognised and acknowledged without a second effect.
CREATE TABLE inbox (
    connector    text NOT NULL,
    message_id   text NOT NULL,
    message_type text NOT NULL,
    outcome      text NOT NULL,   -- case_opened | duplicate_source | refused | ...
    case_id      uuid,
    -- x-gridhub-replays of the copy recorded: a replay from the DLQ (one
    -- more than the refused copy had) may process a refused message again.
    replays      integer NOT NULL DEFAULT 0,
    -- When the recording transaction wrote the row (the statement's own
    -- clock, not the transaction's start): the end of `gridhub bench`'s
    -- latency.
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (connector, message_id)
);

-- Events waiting for (or done with) publication to the out exchange. A row
-- is marked sent only after the broker confirms it.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    destination  text NOT NULL,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);

CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- What the hub refused, for ops: the message itself waits in the DLQ.
CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    connector    text NOT NULL,
    message_id   text,
    routing_key  text NOT NULL,
    stage        text NOT NULL,
    reason       text NOT NULL,
    schema_file  text,
    violations   jsonb NOT NULL DEFAULT '[]',
    refused_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX dead_letters_connector ON dead_letters (connector, refused_at DESC);
