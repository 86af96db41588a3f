-- Lanyard datastore, schema 1 (SQLite).
--
-- Column types and constraints stay within what PostgreSQL and MySQL also accept (VARCHAR with a
-- length, BIGINT, BOOLEAN, BLOB/BYTEA), so the other engines' migrations can mirror this file
-- table for table. Times are unix seconds; 0 means "not set" where a column is NOT NULL.

-- Registration entries. `selector_key` is the hex SHA-256 of the entry's canonical (sorted,
-- deduplicated) selector set: the unique index on (parent_id, spiffe_id, selector_key) makes the
-- database itself refuse a second entry with the same identity, whatever the selector order.
-- That index also serves lookups by parent_id (its leading column).
CREATE TABLE registered_entries (
    id              VARCHAR(255)  NOT NULL PRIMARY KEY,
    spiffe_id       VARCHAR(2048) NOT NULL,
    parent_id       VARCHAR(2048) NOT NULL,
    selector_key    CHAR(64)      NOT NULL,
    x509_svid_ttl   INTEGER       NOT NULL,
    jwt_svid_ttl    INTEGER       NOT NULL,
    admin           BOOLEAN       NOT NULL,
    downstream      BOOLEAN       NOT NULL,
    expires_at      BIGINT        NOT NULL,
    store_svid      BOOLEAN       NOT NULL,
    hint            VARCHAR(1024) NOT NULL,
    revision_number BIGINT        NOT NULL,
    created_at      BIGINT        NOT NULL
);
CREATE UNIQUE INDEX registered_entries_identity
    ON registered_entries (parent_id, spiffe_id, selector_key);
CREATE INDEX registered_entries_spiffe_id ON registered_entries (spiffe_id);
CREATE INDEX registered_entries_expires_at ON registered_entries (expires_at);

CREATE TABLE entry_selectors (
    entry_id VARCHAR(255)  NOT NULL REFERENCES registered_entries (id) ON DELETE CASCADE,
    type     VARCHAR(64)   NOT NULL,
    value    VARCHAR(1024) NOT NULL,
    PRIMARY KEY (entry_id, type, value)
);
CREATE INDEX entry_selectors_type_value ON entry_selectors (type, value);

-- DNS names keep their order: the first one becomes the SVID's subject common name.
CREATE TABLE entry_dns_names (
    entry_id VARCHAR(255) NOT NULL REFERENCES registered_entries (id) ON DELETE CASCADE,
    position INTEGER      NOT NULL,
    name     VARCHAR(255) NOT NULL,
    PRIMARY KEY (entry_id, position)
);

CREATE TABLE entry_federates_with (
    entry_id     VARCHAR(255) NOT NULL REFERENCES registered_entries (id) ON DELETE CASCADE,
    trust_domain VARCHAR(255) NOT NULL,
    PRIMARY KEY (entry_id, trust_domain)
);

-- Join tokens are stored as the hex SHA-256 of the token, never the token itself: a copy of the
-- database does not hand out usable tokens.
CREATE TABLE join_tokens (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,
    expires_at BIGINT   NOT NULL,
    used_at    BIGINT   NULL
);
CREATE INDEX join_tokens_expires_at ON join_tokens (expires_at);

CREATE TABLE attested_agents (
    spiffe_id        VARCHAR(2048) NOT NULL PRIMARY KEY,
    attestation_type VARCHAR(255)  NOT NULL,
    serial           VARCHAR(255)  NOT NULL,
    expires_at       BIGINT        NOT NULL,
    new_serial       VARCHAR(255)  NULL,
    new_expires_at   BIGINT        NOT NULL,
    banned           BOOLEAN       NOT NULL,
    can_reattest     BOOLEAN       NOT NULL,
    created_at       BIGINT        NOT NULL
);
CREATE INDEX attested_agents_expires_at ON attested_agents (expires_at);

CREATE TABLE agent_selectors (
    agent_id VARCHAR(2048) NOT NULL REFERENCES attested_agents (spiffe_id) ON DELETE CASCADE,
    type     VARCHAR(64)   NOT NULL,
    value    VARCHAR(1024) NOT NULL,
    PRIMARY KEY (agent_id, type, value)
);
CREATE INDEX agent_selectors_type_value ON agent_selectors (type, value);

-- Bundles: one row per trust domain, its X.509 authorities as DER in a child table, in order.
CREATE TABLE bundles (
    trust_domain VARCHAR(255) NOT NULL PRIMARY KEY,
    sequence     BIGINT       NOT NULL,
    refresh_hint BIGINT       NOT NULL,
    updated_at   BIGINT       NOT NULL
);

CREATE TABLE bundle_x509_authorities (
    trust_domain VARCHAR(255) NOT NULL REFERENCES bundles (trust_domain) ON DELETE CASCADE,
    position     INTEGER      NOT NULL,
    der          BLOB         NOT NULL,
    PRIMARY KEY (trust_domain, position)
);

-- The CA manager's journal: an opaque blob, at most one row.
CREATE TABLE ca_journal (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    data       BLOB    NOT NULL,
    updated_at BIGINT  NOT NULL
);
