-- 0002: the scheduler's own word on a job that waits (Slurm's pending reason such as
-- Priority, Resources or a QOS limit), shown by `qmctl show`.
ALTER TABLE jobs ADD COLUMN sched_reason TEXT NOT NULL DEFAULT '';
