-- Parts of concatenated inbound SMS, kept until every part has arrived.
CREATE TABLE sms_inbound_parts (
    source      TEXT NOT NULL,
    destination TEXT NOT NULL,
    reference   INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    body        TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (source, reference, total, seq)
);
