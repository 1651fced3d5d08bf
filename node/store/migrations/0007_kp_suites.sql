-- KeyPackages of several cipher suites (issue 15 item 3): keyMaterial hands out one of an
-- acceptable suite (protocol-06 §5.2 acceptableCiphersuites). Rows before this migration are
-- suite 0x0001, the only one our devices published.
ALTER TABLE key_packages ADD COLUMN cipher_suite BIGINT NOT NULL DEFAULT 1;
