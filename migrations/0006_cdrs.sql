-- Call detail records: one row per call leg, written when the call closes
-- (docs/cdr.md). The same fields as a line of the JSON-lines CDR file,
-- plus the campaign and attempt a call was placed for. Times are Unix
-- milliseconds (UTC). Portable SQL: the same text runs on SQLite and
-- PostgreSQL.

CREATE TABLE cdrs (
    id           BIGINT PRIMARY KEY,       -- write order (MAX + 1); the paging key
    call_id      TEXT NOT NULL,            -- rivr's call id; legs of a call share it
    leg          INTEGER NOT NULL,         -- 0 the caller (or first party dialed), then 1, 2, …
    direction    TEXT NOT NULL,            -- inbound, outbound
    transport    TEXT NOT NULL,            -- sip, pri
    trunk        TEXT,
    transport_id TEXT NOT NULL,            -- SIP Call-ID, PRI span/timeslot
    from_number  TEXT NOT NULL,            -- as in the file: a number or a SIP URI
    to_number    TEXT NOT NULL,
    from_user    TEXT NOT NULL,            -- the number alone (a URI's user part): what --number matches
    to_user      TEXT NOT NULL,
    started_at   TEXT NOT NULL,            -- RFC 3339, as in the file
    started_ms   BIGINT NOT NULL,          -- the same instant, for range queries
    answered     INTEGER NOT NULL,         -- 0 or 1
    ring_ms      BIGINT NOT NULL,
    talk_ms      BIGINT NOT NULL,
    end_kind     TEXT NOT NULL,            -- the file's `end`: remote-bye, rejected, …
    outcome      TEXT NOT NULL,            -- answered, busy, no_answer, …
    sip_status   INTEGER,
    reason       TEXT,
    q850         INTEGER,
    script       TEXT NOT NULL,            -- how the script ended
    results      TEXT NOT NULL,            -- JSON object of set_result values
    attempt_id   TEXT,                     -- attempts.id when a campaign placed the call
    campaign_id  TEXT,                     -- that attempt's campaign
    written_ms   BIGINT NOT NULL
);
-- Every filter of the query pairs with the paging key.
CREATE INDEX cdrs_started ON cdrs (started_ms, id);
CREATE INDEX cdrs_from ON cdrs (from_user, id);
CREATE INDEX cdrs_to ON cdrs (to_user, id);
CREATE INDEX cdrs_campaign ON cdrs (campaign_id, id);
CREATE INDEX cdrs_outcome ON cdrs (outcome, id);
CREATE INDEX cdrs_call ON cdrs (call_id);
