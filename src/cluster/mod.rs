//! Several `rivr serve` nodes on one database (docs/scaling.md, "Several
//! nodes"): the rules, sans-IO. Which nodes take part and what share of a
//! trunk's caps each may use ([`share`]); the rows are the store's
//! (`nodes`), the renewals and takeovers the server's
//! (`server::node`).

pub mod share;
