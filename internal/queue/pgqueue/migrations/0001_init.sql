-- Ferry's shared queue, schema version 1. See docs/queue-postgres.md.

-- One row per queued message. The envelope column holds Ferry's envelope
-- encoding (version 2 with its extension trailer, docs/queue-format.md);
-- the body is one bytea value, uncompressed; out of line when large.
CREATE TABLE ferry_messages (
	id        text PRIMARY KEY,
	envelope  bytea NOT NULL,
	body      bytea NOT NULL,
	size      bigint NOT NULL,
	arrival   timestamptz NOT NULL,
	expires   timestamptz NOT NULL,
	held      boolean NOT NULL DEFAULT false
);
ALTER TABLE ferry_messages ALTER COLUMN body SET STORAGE EXTERNAL;
-- Rows up to a page stay whole in the heap (typical mail needs no TOAST
-- rows, so a Put writes one heap tuple); larger bodies go out of line.
ALTER TABLE ferry_messages SET (toast_tuple_target = 8160);

-- One row per recipient: state 0 pending, 1 sent, 2 failed, 3 deferred.
-- The tables below refer to ferry_messages.id without foreign keys: a
-- message's rows are deleted together (deleteSQL), and leaving out the
-- per-row constraint checks keeps the group commit of Puts cheap.
CREATE TABLE ferry_recipients (
	msg_id   text NOT NULL,
	idx      integer NOT NULL,
	hop      text NOT NULL,
	addr     text NOT NULL,
	state    smallint NOT NULL DEFAULT 0,
	attempts integer NOT NULL DEFAULT 0,
	next_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (msg_id, idx)
);

-- One row per message and next hop: the unit of scheduling and of leases.
-- due is the earliest next attempt of a recipient still to deliver (NULL
-- when none, or when the message is held); lease_epoch is the fencing
-- token of the last lease that carried the group.
CREATE TABLE ferry_groups (
	msg_id      text NOT NULL,
	hop         text NOT NULL,
	due         timestamptz DEFAULT now(),
	lease_epoch bigint NOT NULL DEFAULT 0,
	lease_node  text,
	lease_until timestamptz,
	PRIMARY KEY (msg_id, hop)
);
CREATE INDEX ferry_groups_due ON ferry_groups (due) WHERE due IS NOT NULL;
CREATE INDEX ferry_groups_hop_due ON ferry_groups (hop, due) WHERE due IS NOT NULL;
CREATE INDEX ferry_groups_epoch ON ferry_groups (lease_epoch) WHERE lease_until IS NOT NULL;

-- Every recorded attempt or administrative outcome, oldest first.
CREATE TABLE ferry_attempts (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	msg_id     text NOT NULL,
	idx        integer NOT NULL,
	at         timestamptz NOT NULL,
	state      smallint NOT NULL,
	code       integer NOT NULL,
	enhanced   text NOT NULL,
	reply      text NOT NULL,
	remote_mta text NOT NULL,
	next_at    timestamptz,
	expired    boolean NOT NULL,
	node       text NOT NULL
);
CREATE INDEX ferry_attempts_msg ON ferry_attempts (msg_id, seq);

-- Leases out, cluster-wide: the per-hop connection limit counts the live
-- ones. The epoch sequence hands out fencing tokens.
CREATE SEQUENCE ferry_lease_epoch;
CREATE TABLE ferry_leases (
	epoch   bigint PRIMARY KEY,
	hop     text NOT NULL,
	node    text NOT NULL,
	expires timestamptz NOT NULL
);
CREATE INDEX ferry_leases_hop ON ferry_leases (hop, expires);

-- Reports made once per message (delay warnings per threshold).
CREATE TABLE ferry_claims (
	msg_id text NOT NULL,
	tag    text NOT NULL,
	at     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (msg_id, tag)
);

-- Each node takes a tag for its queue IDs at start.
CREATE SEQUENCE ferry_node_tag;
