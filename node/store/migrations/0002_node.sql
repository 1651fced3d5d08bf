-- mimi-store schema, second step (additive, so databases created by 0001 keep working).
-- Portable types only (TEXT, BYTEA, BIGINT); a column added to an existing table is nullable
-- or has a constant default, which both SQLite and PostgreSQL accept in ALTER TABLE.

-- Users of this provider (identifier query by exact handle or nick; consent policy).
CREATE TABLE users (
    user_uri TEXT PRIMARY KEY,
    handle TEXT UNIQUE,
    nick TEXT,
    consent_policy TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX users_by_nick ON users (nick);

-- The room's policy blob (room-policy components as the hub keeps them), beside its state.
ALTER TABLE rooms ADD COLUMN policy BYTEA;

-- Outbox work is leased per (follower, room) stream, so that one worker at a time sends a
-- stream and its order is kept (STORE-outbox-order).
ALTER TABLE outbox_streams ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox_streams ADD COLUMN lease_until_ms BIGINT NOT NULL DEFAULT 0;

-- A follower's sequenced notify stream per (hub, room): the next item to deliver and the
-- items that arrived early (STORE-inbox-order).
CREATE TABLE inbox_streams (
    hub TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    next_seq BIGINT NOT NULL,
    PRIMARY KEY (hub, room_uri)
);

CREATE TABLE inbox_held (
    hub TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    seq BIGINT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (hub, room_uri, seq),
    FOREIGN KEY (hub, room_uri) REFERENCES inbox_streams (hub, room_uri) ON DELETE CASCADE
);

CREATE INDEX consent_by_target ON consent (target, updated_ms);
CREATE INDEX abuse_reports_by_time ON abuse_reports (received_ms);
