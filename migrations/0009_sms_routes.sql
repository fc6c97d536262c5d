-- Sender IDs, scheduling and routes (docs/sms.md).
-- source_ton / source_npi: the sender's type of number and numbering plan,
-- set when the message is stored (NULL: the route's configured ones).
-- not_before_ms: the message is not handed to an SMSC before this instant
-- (local scheduling) or is sent with schedule_delivery_time (SMSC
-- scheduling); a restart reads it back, so a held message still leaves on
-- time. valid_for_ms: the validity period asked for. via: a route forced
-- by the sender (`--via`).
-- On parts: route is the route the part is claimed for (set before it is
-- handed to that route's driver, so a part is never with two routes);
-- routes lists every route it was claimed for, in order; attempts counts
-- them.
ALTER TABLE sms_messages ADD COLUMN source_ton INTEGER;
ALTER TABLE sms_messages ADD COLUMN source_npi INTEGER;
ALTER TABLE sms_messages ADD COLUMN not_before_ms BIGINT;
ALTER TABLE sms_messages ADD COLUMN valid_for_ms BIGINT;
ALTER TABLE sms_messages ADD COLUMN via TEXT;
ALTER TABLE sms_parts ADD COLUMN route TEXT;
ALTER TABLE sms_parts ADD COLUMN routes TEXT;
ALTER TABLE sms_parts ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
