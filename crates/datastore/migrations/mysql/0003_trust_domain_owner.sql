-- Lanyard datastore, schema 3 (MySQL): the trust domain the database serves.
--
-- Servers of one trust domain may share a database; a server of another trust domain pointed
-- at it would read the first one's entries and publish its CA into their bundles as a
-- federated authority. The first server to start records its trust domain here and every
-- later one must match it.
CREATE TABLE trust_domain_owner (
    id           BIGINT       NOT NULL PRIMARY KEY,
    trust_domain VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    claimed_at   BIGINT       NOT NULL,
    CONSTRAINT trust_domain_owner_single_row CHECK (id = 1)
) ENGINE = InnoDB;
