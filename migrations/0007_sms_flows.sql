-- Two-way SMS flows: what became of each inbound SMS (claimed before its
-- script runs), the conversation state a script keeps per sender and
-- route, and the answers scripts stored with set_result.
-- Portable SQL: the same text runs on SQLite and PostgreSQL.

CREATE TABLE sms_flow (
    inbound_id TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    route      TEXT,
    error      TEXT,
    updated_ms BIGINT NOT NULL
);
-- The flow task reads what arrived since a recent time, not every row.
CREATE INDEX sms_inbound_received ON sms_inbound (received_ms);
-- What arrived before flows existed is not answered now.
INSERT INTO sms_flow (inbound_id, state, updated_ms)
    SELECT id, 'before_flows', received_ms FROM sms_inbound;

CREATE TABLE sms_sessions (
    sender     TEXT NOT NULL,
    route      TEXT NOT NULL,
    data       TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (sender, route)
);

CREATE TABLE sms_results (
    inbound_id TEXT NOT NULL,
    sender     TEXT NOT NULL,
    route      TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    PRIMARY KEY (inbound_id, name)
);
CREATE INDEX sms_results_route ON sms_results (route, sender, at_ms);
