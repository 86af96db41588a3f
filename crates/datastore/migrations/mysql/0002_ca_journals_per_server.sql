-- Lanyard datastore, schema 2 (MySQL): one CA journal per server.
--
-- Several servers may share one database (PostgreSQL, MySQL), each with its own CA keys in its
-- own data directory, so each keeps its own journal under the server ID stored in that
-- directory. The single-row `ca_journal` of schema 1 stays readable: a server that finds no
-- journal of its own adopts it once, when it is the first server to use this table.
CREATE TABLE ca_journals (
    server_id  VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    data       LONGBLOB     NOT NULL,
    updated_at BIGINT       NOT NULL
) ENGINE = InnoDB;
