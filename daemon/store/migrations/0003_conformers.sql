-- 0003: conformer searches. A search is one parent job (kind 'conformers') that no
-- scheduler ever sees, and one child job (kind 'conformer') per conformer, each pointing
-- at its parent. meta holds the parent's averaging settings and each child's force-field
-- energy (JSON).
ALTER TABLE jobs ADD COLUMN parent_id TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN meta TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_parent ON jobs (parent_id) WHERE parent_id <> '';
