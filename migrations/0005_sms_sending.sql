-- When a part's submit (SMPP submit_sm or HTTP request) was first written.
-- Stored before the bytes leave, so a part that was perhaps sent by a
-- process that then died is never sent again by the next one: a restart
-- ends it `unknown` (docs/sms.md, "Nothing twice").
ALTER TABLE sms_parts ADD COLUMN sending_ms BIGINT;
