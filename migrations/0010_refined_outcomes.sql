-- Refined outcomes (docs/campaigns.md, "Refined outcomes"): an attempt's
-- outcome with what its early media said (`unreachable:sit-vc`,
-- `no_answer:announcement`), on the CDR and on the attempt; and
-- answering-machine detection as a campaign setting. Portable SQL: the
-- same text runs on SQLite and PostgreSQL.

ALTER TABLE cdrs ADD COLUMN refined_outcome TEXT;
ALTER TABLE cdrs ADD COLUMN early_media TEXT;
ALTER TABLE attempts ADD COLUMN refined_outcome TEXT;
ALTER TABLE campaigns ADD COLUMN amd INTEGER NOT NULL DEFAULT 0;
