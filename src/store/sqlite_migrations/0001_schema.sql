-- The case store on SQLite: the tables, columns, constraints and indexes of
-- src/store/migrations (0001 to 0003), in SQLite's types:
-- - uuids as hyphenated TEXT;
-- - times as UTC TEXT of one width, 2026-11-28T08:35:12.123456Z, so that
--   text order is time order (the default below writes the same shape);
-- - jsonb and text[] as JSON TEXT;
-- - booleans as INTEGER 0/1; bigserial as INTEGER PRIMARY KEY AUTOINCREMENT;
-- - the case number sequence as a row of `counters`.
-- A PostgreSQL migration that changes the schema gets its SQLite twin here.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('case_no', 0);

-- One row per unified case. Personal data lives in reporters, not here.
CREATE TABLE cases (
    id               TEXT PRIMARY KEY,
    -- Readable number for phone calls: TZ + yymmdd (Beijing) + sequence.
    case_no          TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL,
    channel          TEXT NOT NULL,
    nature           TEXT NOT NULL,
    category         TEXT,
    priority         TEXT NOT NULL,
    title            TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    attributes       TEXT NOT NULL DEFAULT '{}',
    media            TEXT NOT NULL DEFAULT '[]',
    -- Place as received, and where the hub located it.
    address          TEXT,
    street_given     TEXT,
    community_given  TEXT,
    lon              REAL,
    lat              REAL,
    grid_id          TEXT,
    community        TEXT,
    street           TEXT,
    located_by       TEXT,
    -- Routing.
    lead_unit        TEXT,
    assisting_units  TEXT NOT NULL DEFAULT '[]',
    dispatch_level   TEXT,
    routing_rule     TEXT,
    -- Lifecycle.
    due_at           TEXT,
    overdue          INTEGER NOT NULL DEFAULT 0,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    rework_count     INTEGER NOT NULL DEFAULT 0,
    satisfaction     TEXT,
    parent_case_id   TEXT REFERENCES cases (id),
    received_at      TEXT NOT NULL,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    -- Bumped on every change; out-of-order updates compare against it.
    version          INTEGER NOT NULL DEFAULT 1,
    status_changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    lead_connector   TEXT,
    unplaced         INTEGER NOT NULL DEFAULT 0,
    dispatched_at    TEXT,
    accept_due_at    TEXT,
    accept_overdue   INTEGER NOT NULL DEFAULT 0,
    return_count     INTEGER NOT NULL DEFAULT 0,
    callback_wanted  INTEGER NOT NULL DEFAULT 0,
    contacted        INTEGER,
    solved           INTEGER,
    closed_at        TEXT
);

CREATE INDEX cases_received_at ON cases (received_at DESC);
CREATE INDEX cases_status ON cases (status);
-- Duplicate detection looks for open cases of a category in a time window.
CREATE INDEX cases_open_by_category ON cases (category, received_at)
    WHERE parent_case_id IS NULL AND status NOT IN ('closed', 'merged', 'rejected', 'answered');
-- The overdue scanner looks for running deadlines.
CREATE INDEX cases_running_deadlines ON cases (due_at)
    WHERE status IN ('dispatched', 'accepted', 'in_progress', 'rework', 'returned');
CREATE INDEX cases_parent ON cases (parent_case_id) WHERE parent_case_id IS NOT NULL;

-- Each source's own ticket id, unique per connector. Written before the
-- case row in the same transaction (the foreign key is checked at commit),
-- so that a ticket already known creates no second case.
CREATE TABLE case_sources (
    connector   TEXT NOT NULL,
    source_ref  TEXT NOT NULL,
    case_id     TEXT NOT NULL REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED,
    message_id  TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    PRIMARY KEY (connector, source_ref)
);

CREATE INDEX case_sources_case ON case_sources (case_id);

-- Personal data, kept apart from the case and never logged.
CREATE TABLE reporters (
    case_id          TEXT NOT NULL REFERENCES cases (id),
    connector        TEXT NOT NULL,
    name             TEXT,
    phone            TEXT,
    id_number        TEXT,
    anonymous        INTEGER NOT NULL DEFAULT 0,
    confidential     INTEGER NOT NULL DEFAULT 0,
    callback_consent INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX reporters_case ON reporters (case_id);

-- Append-only audit trail of every change to a case.
CREATE TABLE case_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     TEXT NOT NULL REFERENCES cases (id),
    kind        TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    actor       TEXT NOT NULL,
    note        TEXT,
    connector   TEXT,
    message_id  TEXT,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

CREATE INDEX case_events_case ON case_events (case_id, id);

-- One row per message the hub has finished with, keyed by its publisher's
-- message_id: written in the same transaction as the message's effect.
CREATE TABLE inbox (
    connector    TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    message_type TEXT NOT NULL,
    outcome      TEXT NOT NULL,   -- case_opened | duplicate_source | refused | ...
    case_id      TEXT,
    replays      INTEGER NOT NULL DEFAULT 0,
    processed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    PRIMARY KEY (connector, message_id)
);

-- Events waiting for (or done with) publication. A row is marked sent only
-- after the bus confirms it.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    destination  TEXT NOT NULL,
    routing_key  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    sent_at      TEXT
);

CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- What the hub refused, for ops: the message itself waits in the DLQ.
CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    connector    TEXT NOT NULL,
    message_id   TEXT,
    routing_key  TEXT NOT NULL,
    stage        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    schema_file  TEXT,
    violations   TEXT NOT NULL DEFAULT '[]',
    refused_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

CREATE INDEX dead_letters_connector ON dead_letters (connector, refused_at DESC);

-- Audit trail of every dead-letter operation. Append-only; bodies and
-- personal data are never written here.
CREATE TABLE dlq_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    filter      TEXT NOT NULL DEFAULT '{}',
    affected    INTEGER NOT NULL,
    failed      INTEGER NOT NULL DEFAULT 0,
    message_ids TEXT NOT NULL DEFAULT '[]',
    note        TEXT
);

CREATE INDEX dlq_audit_at ON dlq_audit (at DESC);

-- The district's grid division (网格), from the planning commission.
CREATE TABLE grids (
    grid_id        TEXT PRIMARY KEY,
    community      TEXT NOT NULL,
    community_kind TEXT,
    street         TEXT NOT NULL,
    -- Outer ring: [[lon, lat], ...] (WGS84).
    polygon        TEXT NOT NULL,
    retired        INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

-- Known addresses (门牌) and their grid: the gazetteer's exact matches.
CREATE TABLE known_addresses (
    address    TEXT PRIMARY KEY,
    grid_id    TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

-- Bumped whenever reference data changes, so every hub reloads it.
CREATE TABLE reference_versions (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO reference_versions (name, version) VALUES ('grids', 0);
