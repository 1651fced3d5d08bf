-- mimi-store schema, one text for SQLite and PostgreSQL (portable types only: TEXT, BYTEA,
-- BIGINT; no auto-increment: every key is natural or counted in a transaction).

CREATE TABLE devices (
    client_uri TEXT PRIMARY KEY,
    user_uri TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);
CREATE INDEX devices_by_user ON devices (user_uri);

CREATE TABLE key_packages (
    kp_ref BYTEA PRIMARY KEY,
    client_uri TEXT NOT NULL,
    key_package BYTEA NOT NULL,
    not_after_s BIGINT NOT NULL,
    last_resort BIGINT NOT NULL,
    claimed_ms BIGINT
);
CREATE INDEX key_packages_free ON key_packages (client_uri, claimed_ms);

CREATE TABLE kp_routes (
    kp_ref BYTEA PRIMARY KEY,
    provider TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE rooms (
    room_uri TEXT PRIMARY KEY,
    hub TEXT NOT NULL,
    state BYTEA NOT NULL,
    epoch BIGINT NOT NULL,
    next_seq BIGINT NOT NULL,
    last_ts_ms BIGINT NOT NULL
);

CREATE TABLE room_events (
    room_uri TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts_ms BIGINT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (room_uri, seq)
);

CREATE TABLE outbox_streams (
    follower TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    next_seq BIGINT NOT NULL,
    PRIMARY KEY (follower, room_uri)
);

CREATE TABLE outbox (
    follower TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    stream_seq BIGINT NOT NULL,
    event_seq BIGINT NOT NULL,
    body BYTEA NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    lease_owner TEXT NOT NULL,
    lease_until_ms BIGINT NOT NULL,
    PRIMARY KEY (follower, room_uri, stream_seq)
);
CREATE INDEX outbox_due ON outbox (follower, next_attempt_ms);

CREATE TABLE inbox_seen (
    item_hash BYTEA PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);

CREATE TABLE room_members (
    room_uri TEXT NOT NULL,
    client_uri TEXT NOT NULL,
    PRIMARY KEY (room_uri, client_uri)
);

CREATE TABLE client_cursors (
    client_uri TEXT PRIMARY KEY,
    next_seq BIGINT NOT NULL
);

CREATE TABLE client_queue (
    client_uri TEXT NOT NULL,
    seq BIGINT NOT NULL,
    room_uri TEXT NOT NULL,
    body BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (client_uri, seq)
);

CREATE TABLE consent (
    requester TEXT NOT NULL,
    target TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (requester, target, room_uri)
);

CREATE TABLE abuse_reports (
    report_hash BYTEA PRIMARY KEY,
    room_uri TEXT NOT NULL,
    reporter TEXT NOT NULL,
    body BYTEA NOT NULL,
    received_ms BIGINT NOT NULL
);
