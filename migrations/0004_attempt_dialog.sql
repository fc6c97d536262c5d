-- The whole SIP dialog of an attempt's call, as the SIP layer describes it
-- (sip::endpoint::OutDialog, JSON): what a new process needs to CANCEL or
-- BYE a call a dead one left at the carrier. The typed columns beside it
-- (call_id, tags, remote_target, route_set, cseq) stay for queries.
ALTER TABLE attempts ADD COLUMN sip_dialog TEXT;
