-- Lanyard datastore, schema 1 (MySQL 8 / MariaDB 10.11). Mirrors the SQLite schema after its
-- migration 2, table for table and column for column, so one body of SQL serves every engine.
-- Every integer is BIGINT and flags are BIGINT 0/1 (the driver layer reads integers the same on
-- every engine, but has no mapping for MySQL's TINYINT booleans).
--
-- Collations: the server default compares case-insensitively, but SPIFFE IDs, trust domains
-- and entry IDs are case-sensitive, so they are ASCII with binary collation; selectors and
-- hints (any UTF-8) use utf8mb4_bin. InnoDB limits an index key to 3072 bytes, so long keys
-- are indexed through a SHA-256 or a prefix instead.

-- Writers lock this table's only row as their first statement (SELECT ... FOR UPDATE), which
-- serializes them even across several Lanyard servers on one database.
CREATE TABLE write_lock (
    id BIGINT NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
INSERT INTO write_lock (id) VALUES (1);

-- identity_hash makes (parent_id, spiffe_id, selector_key) unique: the three together exceed
-- InnoDB's key size. SPIFFE IDs contain no spaces, so the joined text is unambiguous. The inputs
-- are VARCHAR, not CHAR: MariaDB refuses a generated column over CHAR, whose padding depends on
-- the session's sql_mode.
CREATE TABLE registered_entries (
    id              VARCHAR(255)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    spiffe_id       VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    parent_id       VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    selector_key    VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    x509_svid_ttl   BIGINT        NOT NULL,
    jwt_svid_ttl    BIGINT        NOT NULL,
    expires_at      BIGINT        NOT NULL,
    hint            VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    revision_number BIGINT        NOT NULL,
    created_at      BIGINT        NOT NULL,
    admin           BIGINT        NOT NULL,
    downstream      BIGINT        NOT NULL,
    store_svid      BIGINT        NOT NULL,
    identity_hash   CHAR(64)      CHARACTER SET ascii COLLATE ascii_bin
        AS (SHA2(CONCAT(parent_id, ' ', spiffe_id, ' ', selector_key), 256)) STORED,
    UNIQUE KEY registered_entries_identity (identity_hash),
    KEY registered_entries_parent_id (parent_id),
    KEY registered_entries_spiffe_id (spiffe_id),
    KEY registered_entries_expires_at (expires_at)
) ENGINE = InnoDB;

CREATE TABLE entry_selectors (
    row_id   BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    entry_id VARCHAR(255)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    type     VARCHAR(64)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    value    VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    KEY entry_selectors_entry_id (entry_id),
    KEY entry_selectors_type_value (type, value(255)),
    CONSTRAINT entry_selectors_entry FOREIGN KEY (entry_id)
        REFERENCES registered_entries (id) ON DELETE CASCADE
) ENGINE = InnoDB;

CREATE TABLE entry_dns_names (
    entry_id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    position BIGINT       NOT NULL,
    name     VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (entry_id, position),
    CONSTRAINT entry_dns_names_entry FOREIGN KEY (entry_id)
        REFERENCES registered_entries (id) ON DELETE CASCADE
) ENGINE = InnoDB;

CREATE TABLE entry_federates_with (
    entry_id     VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    trust_domain VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (entry_id, trust_domain),
    KEY entry_federates_with_trust_domain (trust_domain),
    CONSTRAINT entry_federates_with_entry FOREIGN KEY (entry_id)
        REFERENCES registered_entries (id) ON DELETE CASCADE
) ENGINE = InnoDB;

-- Join tokens are stored as the hex SHA-256 of the token, never the token itself.
CREATE TABLE join_tokens (
    token_hash VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    expires_at BIGINT   NOT NULL,
    used_at    BIGINT   NULL,
    KEY join_tokens_expires_at (expires_at)
) ENGINE = InnoDB;

CREATE TABLE attested_agents (
    spiffe_id        VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    attestation_type VARCHAR(255)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    serial           VARCHAR(255)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    expires_at       BIGINT        NOT NULL,
    new_serial       VARCHAR(255)  CHARACTER SET ascii COLLATE ascii_bin NULL,
    new_expires_at   BIGINT        NOT NULL,
    created_at       BIGINT        NOT NULL,
    banned           BIGINT        NOT NULL,
    can_reattest     BIGINT        NOT NULL,
    KEY attested_agents_expires_at (expires_at),
    KEY attested_agents_attestation_type (attestation_type)
) ENGINE = InnoDB;

CREATE TABLE agent_selectors (
    row_id   BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    agent_id VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    type     VARCHAR(64)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    value    VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    KEY agent_selectors_agent_id (agent_id),
    KEY agent_selectors_type_value (type, value(255)),
    CONSTRAINT agent_selectors_agent FOREIGN KEY (agent_id)
        REFERENCES attested_agents (spiffe_id) ON DELETE CASCADE
) ENGINE = InnoDB;

CREATE TABLE bundles (
    trust_domain VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    sequence     BIGINT       NOT NULL,
    refresh_hint BIGINT       NOT NULL,
    updated_at   BIGINT       NOT NULL
) ENGINE = InnoDB;

CREATE TABLE bundle_x509_authorities (
    trust_domain VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    position     BIGINT       NOT NULL,
    der          LONGBLOB     NOT NULL,
    tainted      BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (trust_domain, position),
    CONSTRAINT bundle_x509_authorities_bundle FOREIGN KEY (trust_domain)
        REFERENCES bundles (trust_domain) ON DELETE CASCADE
) ENGINE = InnoDB;

CREATE TABLE bundle_jwt_keys (
    trust_domain VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    position     BIGINT       NOT NULL,
    key_id       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    public_key   BLOB         NOT NULL,
    expires_at   BIGINT       NOT NULL,
    tainted      BIGINT       NOT NULL,
    PRIMARY KEY (trust_domain, position),
    CONSTRAINT bundle_jwt_keys_bundle FOREIGN KEY (trust_domain)
        REFERENCES bundles (trust_domain) ON DELETE CASCADE
) ENGINE = InnoDB;

CREATE TABLE federation_relationships (
    trust_domain        VARCHAR(255)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    bundle_endpoint_url VARCHAR(2048) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    endpoint_profile    VARCHAR(32)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    endpoint_spiffe_id  VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NULL,
    updated_at          BIGINT        NOT NULL
) ENGINE = InnoDB;

-- The change feed. Writers hold the write_lock row, so AUTO_INCREMENT values are drawn in
-- commit order.
CREATE TABLE changes (
    seq        BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind       VARCHAR(32)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    object_key VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at BIGINT        NOT NULL,
    KEY changes_created_at (created_at)
) ENGINE = InnoDB;

-- The CA manager's journal: an opaque blob, at most one row.
CREATE TABLE ca_journal (
    id         BIGINT   NOT NULL PRIMARY KEY,
    data       LONGBLOB NOT NULL,
    updated_at BIGINT   NOT NULL,
    CONSTRAINT ca_journal_single_row CHECK (id = 1)
) ENGINE = InnoDB;
