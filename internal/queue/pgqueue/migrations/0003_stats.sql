-- Ferry's shared queue, schema version 3: what the metrics read cheaply.
-- See docs/queue-postgres.md.

-- Held messages are few and a Put stores none (held is false), so this
-- partial index costs the group commit nothing; it lets the metrics count
-- held messages without reading the heap of ferry_messages, where the
-- bodies of typical mail live.
CREATE INDEX ferry_messages_held ON ferry_messages (id) WHERE held;
