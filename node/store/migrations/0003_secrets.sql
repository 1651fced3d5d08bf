-- mimi-store schema, third step (additive): the node's own long-lived secrets, shared by every
-- process of one provider (the hub's MLS signature key for ExternalSender and GroupInfo
-- responses). Written once; a second writer keeps the first value.
CREATE TABLE node_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);
