-- Nodes (issue 15 part 2, docs/scaling.md "Several nodes"): each `rivr
-- serve` keeps one row, renewing its lease every second; an attempt names
-- the node that claimed it, so a node whose lease ran out has its
-- attempts in flight resolved by another by the crash rule.
CREATE TABLE nodes (
    id             TEXT PRIMARY KEY,       -- [cluster] node_id
    incarnation    TEXT NOT NULL,          -- random per process
    started_at     BIGINT NOT NULL,
    heartbeat_at   BIGINT NOT NULL,        -- the last renewal (Unix ms)
    lease_until    BIGINT NOT NULL,        -- alive until then
    reserved_until BIGINT,                 -- dead: its cap share held until then
    channels       TEXT NOT NULL DEFAULT '{}' -- JSON: trunk -> calls up, at the last renewal
);
CREATE INDEX nodes_lease ON nodes (lease_until);

ALTER TABLE attempts ADD COLUMN node TEXT;
CREATE INDEX attempts_node ON attempts (node, state);
