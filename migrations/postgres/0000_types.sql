-- PostgreSQL only, before the shared migrations: names the column types
-- the shared files use that PostgreSQL lacks, so those files run here
-- unchanged. BLOB is SQLite's name for bytes; PostgreSQL's is BYTEA (a
-- column of a domain reads back as its base type).
CREATE DOMAIN blob AS BYTEA;
