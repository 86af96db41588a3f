-- Lanyard datastore, schema 4 (SQLite): the trust domain the database serves.
--
-- Servers of one trust domain may share a database; a server of another trust domain pointed
-- at it would read the first one's entries and publish its CA into their bundles as a
-- federated authority. The first server to start records its trust domain here and every
-- later one must match it.
CREATE TABLE trust_domain_owner (
    id           INTEGER      NOT NULL PRIMARY KEY CHECK (id = 1),
    trust_domain VARCHAR(255) NOT NULL,
    claimed_at   BIGINT       NOT NULL
);
