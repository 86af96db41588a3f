-- Lanyard datastore, schema 1 (PostgreSQL). Mirrors the SQLite schema after its migration 2,
-- table for table and column for column, so one body of SQL serves both. Every integer is
-- BIGINT and flags are BIGINT 0/1 (the driver layer reads integers the same on every engine).
-- Text columns use the "C" collation: byte-wise comparison and order, as on the other engines,
-- whatever the database default, so IDs sort and page the same everywhere.

-- Writers lock this table's only row as their first statement (SELECT ... FOR UPDATE), which
-- serializes them even across several Lanyard servers on one database.
CREATE TABLE write_lock (
    id BIGINT NOT NULL PRIMARY KEY
);
INSERT INTO write_lock (id) VALUES (1);

-- The uniqueness of (parent_id, spiffe_id, selector_key) is enforced on a SHA-256 of the three:
-- two SPIFFE IDs of up to 2048 bytes each would exceed the size limit of a B-tree index entry.
-- convert_to() is only STABLE because it depends on the database encoding, which a database
-- never changes, so wrapping it as IMMUTABLE is sound.
CREATE FUNCTION lanyard_entry_identity(parent_id TEXT, spiffe_id TEXT, selector_key TEXT)
    RETURNS BYTEA LANGUAGE SQL IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT sha256(convert_to(parent_id || ' ' || spiffe_id || ' ' || selector_key, 'UTF8')) $$;

CREATE TABLE registered_entries (
    id              VARCHAR(255)  COLLATE "C" NOT NULL PRIMARY KEY,
    spiffe_id       VARCHAR(2048) COLLATE "C" NOT NULL,
    parent_id       VARCHAR(2048) COLLATE "C" NOT NULL,
    selector_key    VARCHAR(64)   COLLATE "C" NOT NULL,
    x509_svid_ttl   BIGINT        NOT NULL,
    jwt_svid_ttl    BIGINT        NOT NULL,
    expires_at      BIGINT        NOT NULL,
    hint            VARCHAR(1024) COLLATE "C" NOT NULL,
    revision_number BIGINT        NOT NULL,
    created_at      BIGINT        NOT NULL,
    admin           BIGINT        NOT NULL,
    downstream      BIGINT        NOT NULL,
    store_svid      BIGINT        NOT NULL
);
CREATE UNIQUE INDEX registered_entries_identity
    ON registered_entries (lanyard_entry_identity(parent_id, spiffe_id, selector_key));
CREATE INDEX registered_entries_parent_id ON registered_entries (parent_id);
CREATE INDEX registered_entries_spiffe_id ON registered_entries (spiffe_id);
CREATE INDEX registered_entries_expires_at ON registered_entries (expires_at);

-- Selector rows get a surrogate key: (entry, type, value) can exceed a B-tree entry's size.
-- Lookups by value use a hash index, which has no size limit and serves equality.
CREATE TABLE entry_selectors (
    row_id   BIGINT        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id VARCHAR(255)  COLLATE "C" NOT NULL REFERENCES registered_entries (id) ON DELETE CASCADE,
    type     VARCHAR(64)   COLLATE "C" NOT NULL,
    value    VARCHAR(1024) COLLATE "C" NOT NULL
);
CREATE INDEX entry_selectors_entry_id ON entry_selectors (entry_id);
CREATE INDEX entry_selectors_value ON entry_selectors USING HASH (value);

CREATE TABLE entry_dns_names (
    entry_id VARCHAR(255) COLLATE "C" NOT NULL REFERENCES registered_entries (id) ON DELETE CASCADE,
    position BIGINT       NOT NULL,
    name     VARCHAR(255) COLLATE "C" NOT NULL,
    PRIMARY KEY (entry_id, position)
);

CREATE TABLE entry_federates_with (
    entry_id     VARCHAR(255) COLLATE "C" NOT NULL REFERENCES registered_entries (id) ON DELETE CASCADE,
    trust_domain VARCHAR(255) COLLATE "C" NOT NULL,
    PRIMARY KEY (entry_id, trust_domain)
);
CREATE INDEX entry_federates_with_trust_domain ON entry_federates_with (trust_domain);

-- Join tokens are stored as the hex SHA-256 of the token, never the token itself.
CREATE TABLE join_tokens (
    token_hash VARCHAR(64) COLLATE "C" NOT NULL PRIMARY KEY,
    expires_at BIGINT      NOT NULL,
    used_at    BIGINT      NULL
);
CREATE INDEX join_tokens_expires_at ON join_tokens (expires_at);

CREATE TABLE attested_agents (
    spiffe_id        VARCHAR(2048) COLLATE "C" NOT NULL PRIMARY KEY,
    attestation_type VARCHAR(255)  COLLATE "C" NOT NULL,
    serial           VARCHAR(255)  COLLATE "C" NOT NULL,
    expires_at       BIGINT        NOT NULL,
    new_serial       VARCHAR(255)  COLLATE "C" NULL,
    new_expires_at   BIGINT        NOT NULL,
    created_at       BIGINT        NOT NULL,
    banned           BIGINT        NOT NULL,
    can_reattest     BIGINT        NOT NULL
);
CREATE INDEX attested_agents_expires_at ON attested_agents (expires_at);
CREATE INDEX attested_agents_attestation_type ON attested_agents (attestation_type);

CREATE TABLE agent_selectors (
    row_id   BIGINT        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id VARCHAR(2048) COLLATE "C" NOT NULL REFERENCES attested_agents (spiffe_id) ON DELETE CASCADE,
    type     VARCHAR(64)   COLLATE "C" NOT NULL,
    value    VARCHAR(1024) COLLATE "C" NOT NULL
);
CREATE INDEX agent_selectors_agent_id ON agent_selectors (agent_id);
CREATE INDEX agent_selectors_value ON agent_selectors USING HASH (value);

CREATE TABLE bundles (
    trust_domain VARCHAR(255) COLLATE "C" NOT NULL PRIMARY KEY,
    sequence     BIGINT       NOT NULL,
    refresh_hint BIGINT       NOT NULL,
    updated_at   BIGINT       NOT NULL
);

CREATE TABLE bundle_x509_authorities (
    trust_domain VARCHAR(255) COLLATE "C" NOT NULL REFERENCES bundles (trust_domain) ON DELETE CASCADE,
    position     BIGINT       NOT NULL,
    der          BYTEA        NOT NULL,
    tainted      BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (trust_domain, position)
);

CREATE TABLE bundle_jwt_keys (
    trust_domain VARCHAR(255) COLLATE "C" NOT NULL REFERENCES bundles (trust_domain) ON DELETE CASCADE,
    position     BIGINT       NOT NULL,
    key_id       VARCHAR(255) COLLATE "C" NOT NULL,
    public_key   BYTEA        NOT NULL,
    expires_at   BIGINT       NOT NULL,
    tainted      BIGINT       NOT NULL,
    PRIMARY KEY (trust_domain, position)
);

CREATE TABLE federation_relationships (
    trust_domain        VARCHAR(255)  COLLATE "C" NOT NULL PRIMARY KEY,
    bundle_endpoint_url VARCHAR(2048) COLLATE "C" NOT NULL,
    endpoint_profile    VARCHAR(32)   COLLATE "C" NOT NULL,
    endpoint_spiffe_id  VARCHAR(2048) COLLATE "C" NULL,
    updated_at          BIGINT        NOT NULL
);

-- The change feed. Writers hold the write_lock row, so identity values are drawn in commit
-- order.
CREATE TABLE changes (
    seq        BIGINT        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       VARCHAR(32)   COLLATE "C" NOT NULL,
    object_key VARCHAR(2048) COLLATE "C" NOT NULL,
    created_at BIGINT        NOT NULL
);
CREATE INDEX changes_created_at ON changes (created_at);

-- The CA manager's journal: an opaque blob, at most one row.
CREATE TABLE ca_journal (
    id         BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    data       BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL
);
