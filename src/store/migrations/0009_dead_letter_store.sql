-- Dead letters as ops read them. The hub consumes every DLQ into this table
-- and acknowledges each message only after it is recorded, so that listing,
-- showing, grouping and the console read the store and never the queue
-- (every read of a queue is a delivery the broker counts). A replay or a
-- purge settles the row and clears its body.
CREATE TABLE dlq_messages (
    id          bigserial PRIMARY KEY,
    -- ops::Letter's id: the same dead letter delivered twice is recorded once.
    letter_id   text NOT NULL UNIQUE,
    connector   text NOT NULL,
    routing_key text NOT NULL,
    -- The AMQP encoding of its properties (flags and list), as delivered.
    properties  bytea NOT NULL,
    body        bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    settled_at  timestamptz,
    settled_as  text
);

CREATE INDEX dlq_messages_waiting ON dlq_messages (connector, id) WHERE settled_at IS NULL;
