-- KeyPackages that came with a consent grant (protocol-06 §5.7: "KeyPackages in a grant let
-- the requester add immediately"), kept at the requester's provider for the requester, each
-- handed out once.
CREATE TABLE granted_key_packages (
    requester TEXT NOT NULL,
    target TEXT NOT NULL,
    n BIGINT NOT NULL,
    key_package BYTEA NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (requester, target, n)
);
