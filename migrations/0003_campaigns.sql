-- Outbound campaigns: the campaign, its contacts, every attempt to call
-- one, and the do-not-call list. Times are Unix milliseconds (UTC).
-- Portable SQL: the same text runs on SQLite and PostgreSQL.
-- docs/campaigns-data.md describes the states and the crash rule.

CREATE TABLE campaigns (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    script       TEXT NOT NULL,
    trunks       TEXT NOT NULL,            -- comma list of trunk names
    cps          DOUBLE PRECISION NOT NULL,
    max_channels INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,         -- most attempts per contact
    retry        TEXT NOT NULL,            -- the retry spec, as written
    hours        TEXT NOT NULL,            -- calling hours, as written
    days         TEXT NOT NULL,            -- calling days, as written
    tz           TEXT NOT NULL,            -- IANA zone of contacts with none
    country      TEXT NOT NULL,            -- ISO 3166 alpha-2 for national numbers
    sms          TEXT,                     -- SMS fallback template
    sms_on       TEXT NOT NULL,            -- comma list of attempt outcomes
    ends_at      BIGINT,
    priority     INTEGER NOT NULL,
    field_names  TEXT NOT NULL,            -- JSON array: the CSV's other columns, in order
    state        TEXT NOT NULL,            -- created, running, paused, done, cancelled
    version      BIGINT NOT NULL,          -- store-wide change counter
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX campaigns_version ON campaigns (version);

CREATE TABLE contacts (
    id          BIGINT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    line        BIGINT NOT NULL,           -- line in the CSV file
    phone       TEXT NOT NULL,             -- E.164
    fields      TEXT NOT NULL,             -- JSON object: column -> value
    tz          TEXT,                      -- IANA zone, or the campaign's
    state       TEXT NOT NULL,             -- waiting, dialing, done
    next_at     BIGINT NOT NULL,           -- due from (when waiting)
    attempts    INTEGER NOT NULL,          -- attempts claimed so far
    outcome     TEXT,                      -- of the last attempt; final once done
    sms_id      TEXT,                      -- sms_messages.id, set at most once
    UNIQUE (campaign_id, line),
    UNIQUE (campaign_id, phone)
);
-- The next due contact of a campaign, and its counters.
CREATE INDEX contacts_due ON contacts (campaign_id, state, next_at, id);

CREATE TABLE attempts (
    id            TEXT PRIMARY KEY,        -- travels in the call
    campaign_id   TEXT NOT NULL REFERENCES campaigns (id),
    contact_id    BIGINT NOT NULL REFERENCES contacts (id),
    n             INTEGER NOT NULL,        -- 1 for the contact's first attempt
    trunk         TEXT,
    state         TEXT NOT NULL,           -- claimed, dialing, done
    outcome       TEXT,                    -- set once, when done
    sip_status    INTEGER,
    q850          INTEGER,
    ring_ms       BIGINT,
    talk_ms       BIGINT,
    results       TEXT,                    -- JSON object of set_result values
    claimed_at    BIGINT NOT NULL,
    dialed_at     BIGINT,
    answered_at   BIGINT,
    ended_at      BIGINT,
    -- The SIP dialog, filled as it becomes known, so a later process can
    -- send CANCEL or BYE for a call a dead one left up.
    call_id       TEXT,
    local_tag     TEXT,
    remote_tag    TEXT,
    remote_target TEXT,
    route_set     TEXT,
    cseq          BIGINT,
    -- Until when a call left by a dead process still holds a channel.
    ghost_until   BIGINT,
    UNIQUE (contact_id, n)
);
CREATE INDEX attempts_state ON attempts (state);
CREATE INDEX attempts_campaign ON attempts (campaign_id, outcome);
CREATE INDEX attempts_call_id ON attempts (call_id);
CREATE INDEX attempts_ghost ON attempts (ghost_until);

CREATE TABLE dnc (
    phone    TEXT PRIMARY KEY,             -- E.164
    added_at BIGINT NOT NULL,
    source   TEXT NOT NULL                 -- cli, import:FILE, …
);
