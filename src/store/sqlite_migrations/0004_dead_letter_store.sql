-- Dead letters as ops read them (see the PostgreSQL migration 0009).
CREATE TABLE dlq_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    letter_id   TEXT NOT NULL UNIQUE,
    connector   TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    properties  BLOB NOT NULL,
    body        BLOB NOT NULL,
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    settled_at  TEXT,
    settled_as  TEXT
);

CREATE INDEX dlq_messages_waiting ON dlq_messages (connector, id) WHERE settled_at IS NULL;
