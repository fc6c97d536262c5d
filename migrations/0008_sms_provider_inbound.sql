-- The provider's id of each inbound SMS an HTTP provider's webhook
-- delivered, so one it posts again (after a timeout) is stored once.
CREATE TABLE sms_provider_inbound (
    provider_id TEXT PRIMARY KEY,
    inbound_id  TEXT NOT NULL,
    received_ms BIGINT NOT NULL
);
