//! Persistence: SQLite by default, written so a PostgreSQL backend can follow.
//! (Being built; see issue 4.)
