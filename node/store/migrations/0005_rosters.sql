-- mimi-store schema, fifth step (additive): a follower's roster of each room it follows
-- (mimi-room Roster: the credential at every leaf, the epoch, the proposals of the epoch),
-- kept from the hub's fanout so that only members get the room's traffic
-- (PROTO-follower-membership, STORE-roster).
CREATE TABLE follower_rosters (
    room_uri TEXT NOT NULL PRIMARY KEY,
    roster BYTEA NOT NULL
);
