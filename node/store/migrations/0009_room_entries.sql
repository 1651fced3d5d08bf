-- ROOM-hub-entries / STORE-room-entries (issue 16): a hosted room's openmls state as entries
-- written as they change (the ratchet tree one row per node), beside the room row's head; the
-- head's version counts its writes, so a node's decoded copy of the room knows it is current.
ALTER TABLE rooms ADD COLUMN state_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE room_state_entries (
    room_uri TEXT NOT NULL,
    k BYTEA NOT NULL,
    v BYTEA NOT NULL,
    PRIMARY KEY (room_uri, k)
);
