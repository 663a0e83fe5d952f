-- Ferry's shared queue, schema version 4: a finished message whose failure
-- report could not be queued stays, marked, until it is (the report is owed,
-- never lost). See docs/queue-postgres.md.
ALTER TABLE ferry_messages ADD COLUMN report_owed boolean NOT NULL DEFAULT false;
-- Owed reports are rare: a partial index finds them without reading the
-- heap, and costs a Put nothing (report_owed is false).
CREATE INDEX ferry_messages_report_owed ON ferry_messages (arrival) WHERE report_owed;
