-- SMS messages, their parts (one per submit_sm) and receipts that arrived
-- before the submit_sm_resp that names their message.
-- Portable SQL: the same text runs on SQLite and PostgreSQL.

CREATE TABLE sms_messages (
    id          TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    source      TEXT NOT NULL,
    destination TEXT NOT NULL,
    body        TEXT NOT NULL,
    parts       INTEGER NOT NULL,
    state       TEXT NOT NULL,
    error       TEXT,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);
CREATE INDEX sms_messages_state ON sms_messages (state, seq);

CREATE TABLE sms_parts (
    message_id      TEXT NOT NULL REFERENCES sms_messages (id),
    part            INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL,
    esm_class       INTEGER NOT NULL,
    data_coding     INTEGER NOT NULL,
    payload         INTEGER NOT NULL,
    short_message   BLOB NOT NULL,
    smsc_id         TEXT,
    smsc_id_dec     TEXT,
    smsc_id_hex     TEXT,
    error           TEXT,
    submitted_ms    BIGINT,
    PRIMARY KEY (message_id, part)
);
CREATE INDEX sms_parts_smsc_id ON sms_parts (smsc_id);
CREATE INDEX sms_parts_smsc_id_dec ON sms_parts (smsc_id_dec);
CREATE INDEX sms_parts_smsc_id_hex ON sms_parts (smsc_id_hex);
CREATE INDEX sms_parts_state ON sms_parts (state);

CREATE TABLE sms_early_receipts (
    smsc_id     TEXT NOT NULL,
    smsc_id_dec TEXT,
    smsc_id_hex TEXT,
    state       TEXT NOT NULL,
    error       TEXT,
    received_ms BIGINT NOT NULL
);

CREATE TABLE sms_inbound (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    destination TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_ms BIGINT NOT NULL
);
