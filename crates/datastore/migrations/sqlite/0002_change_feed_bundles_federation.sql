-- Lanyard datastore, schema 2 (SQLite): the change feed, full bundles (JWT authorities, tainted
-- X.509 authorities), federation relationships, and integer flags.

-- Flags become BIGINT 0/1. The datastore reads all three engines through one driver layer that
-- maps a declared BOOLEAN differently per engine (and not at all for SQLite), while integers
-- read the same everywhere. Each column is replaced in place: rename, add, copy, drop.
ALTER TABLE registered_entries RENAME COLUMN admin TO admin_old;
ALTER TABLE registered_entries ADD COLUMN admin BIGINT NOT NULL DEFAULT 0;
UPDATE registered_entries SET admin = CASE WHEN admin_old THEN 1 ELSE 0 END;
ALTER TABLE registered_entries DROP COLUMN admin_old;

ALTER TABLE registered_entries RENAME COLUMN downstream TO downstream_old;
ALTER TABLE registered_entries ADD COLUMN downstream BIGINT NOT NULL DEFAULT 0;
UPDATE registered_entries SET downstream = CASE WHEN downstream_old THEN 1 ELSE 0 END;
ALTER TABLE registered_entries DROP COLUMN downstream_old;

ALTER TABLE registered_entries RENAME COLUMN store_svid TO store_svid_old;
ALTER TABLE registered_entries ADD COLUMN store_svid BIGINT NOT NULL DEFAULT 0;
UPDATE registered_entries SET store_svid = CASE WHEN store_svid_old THEN 1 ELSE 0 END;
ALTER TABLE registered_entries DROP COLUMN store_svid_old;

ALTER TABLE attested_agents RENAME COLUMN banned TO banned_old;
ALTER TABLE attested_agents ADD COLUMN banned BIGINT NOT NULL DEFAULT 0;
UPDATE attested_agents SET banned = CASE WHEN banned_old THEN 1 ELSE 0 END;
ALTER TABLE attested_agents DROP COLUMN banned_old;

ALTER TABLE attested_agents RENAME COLUMN can_reattest TO can_reattest_old;
ALTER TABLE attested_agents ADD COLUMN can_reattest BIGINT NOT NULL DEFAULT 0;
UPDATE attested_agents SET can_reattest = CASE WHEN can_reattest_old THEN 1 ELSE 0 END;
ALTER TABLE attested_agents DROP COLUMN can_reattest_old;

-- Deleting or dissociating a bundle finds the entries that federate with it.
CREATE INDEX entry_federates_with_trust_domain ON entry_federates_with (trust_domain);
CREATE INDEX attested_agents_attestation_type ON attested_agents (attestation_type);

ALTER TABLE bundle_x509_authorities ADD COLUMN tainted BIGINT NOT NULL DEFAULT 0;

CREATE TABLE bundle_jwt_keys (
    trust_domain VARCHAR(255)  NOT NULL REFERENCES bundles (trust_domain) ON DELETE CASCADE,
    position     BIGINT        NOT NULL,
    key_id       VARCHAR(255)  NOT NULL,
    public_key   BLOB          NOT NULL,
    expires_at   BIGINT        NOT NULL,
    tainted      BIGINT        NOT NULL,
    PRIMARY KEY (trust_domain, position)
);

-- endpoint_spiffe_id is set exactly when the profile is 'https_spiffe'.
CREATE TABLE federation_relationships (
    trust_domain        VARCHAR(255)  NOT NULL PRIMARY KEY,
    bundle_endpoint_url VARCHAR(2048) NOT NULL,
    endpoint_profile    VARCHAR(32)   NOT NULL,
    endpoint_spiffe_id  VARCHAR(2048) NULL,
    updated_at          BIGINT        NOT NULL
);

-- The change feed. AUTOINCREMENT never reuses a number, even after the newest row is gone;
-- writers are serialized by BEGIN IMMEDIATE, so numbers grow in commit order.
CREATE TABLE changes (
    seq        INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind       VARCHAR(32)   NOT NULL,
    object_key VARCHAR(2048) NOT NULL,
    created_at BIGINT        NOT NULL
);
CREATE INDEX changes_created_at ON changes (created_at);
