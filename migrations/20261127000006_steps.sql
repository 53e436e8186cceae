-- The training loss of every optimizer step (mini-batch), beside the per-epoch metrics.
-- Written in the same transaction as the epoch's metrics. No foreign key: checking one per
-- row cost a quarter of the insert rate (0.66-0.99 M against 1.19-1.23 M rows/s); the
-- trigger below deletes a trial's steps with the trial instead.
CREATE TABLE steps (
    trial_id      INTEGER NOT NULL,         -- trials.id
    step          INTEGER NOT NULL,         -- 1-based over the trial's training
    epoch         INTEGER NOT NULL,         -- 1-based epoch the step belongs to
    loss          REAL,                     -- the mini-batch's mean loss; NULL if NaN
    PRIMARY KEY (trial_id, step)
) WITHOUT ROWID;

CREATE TRIGGER steps_go_with_their_trial AFTER DELETE ON trials BEGIN
    DELETE FROM steps WHERE trial_id = old.id;
END;
