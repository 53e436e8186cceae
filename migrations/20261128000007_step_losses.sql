-- Per-step losses as one row per (trial, epoch) holding the epoch's losses as a JSON array,
-- instead of one row per step. The digits sweep's 27,360 step rows took about 25 ms of CPU
-- to insert, the most of any write; its 960 epoch rows take a few. The view `steps` gives
-- the same columns, one row per step, as the table it replaces.
CREATE TABLE step_losses (
    trial_id      INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    epoch         INTEGER NOT NULL,         -- 1-based
    first_step    INTEGER NOT NULL,         -- the number of the epoch's first step (1-based over the trial)
    losses        TEXT NOT NULL,            -- JSON array: each mini-batch's mean loss in order; null if NaN or infinite
    PRIMARY KEY (trial_id, epoch)
) WITHOUT ROWID;

-- Each loss as 17 significant digits, which read back as the same number (json_group_array
-- alone writes 15).
INSERT INTO step_losses (trial_id, epoch, first_step, losses)
SELECT trial_id, epoch, min(step),
       json_group_array(CASE WHEN loss IS NOT NULL THEN json(printf('%!.17g', loss)) END
                        ORDER BY step)
FROM steps
WHERE trial_id IN (SELECT id FROM trials)
GROUP BY trial_id, epoch;

DROP TRIGGER steps_go_with_their_trial;
DROP TABLE steps;

-- One row per optimizer step, as the table of that name had: `trial_id`, `step` (1-based over
-- the trial's training), `epoch`, `loss` (NULL if NaN or infinite).
CREATE VIEW steps AS
SELECT s.trial_id, s.first_step + j.key AS step, s.epoch, j.value AS loss
FROM step_losses s, json_each(s.losses) j;
