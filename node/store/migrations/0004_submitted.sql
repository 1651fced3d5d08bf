-- mimi-store schema, fourth step (additive): application messages the hub accepted, by a hash
-- of their bytes, so that a client that resubmits after losing the answer (a crash, a timeout)
-- gets the original answer and the message is not fanned out twice (STORE-submit-idempotent).
CREATE TABLE submitted (
    room_uri TEXT NOT NULL,
    msg_hash BYTEA NOT NULL,
    ts_ms BIGINT NOT NULL,
    PRIMARY KEY (room_uri, msg_hash)
);
