-- Successive halving (ASHA) pauses trials at rungs and promotes them later: decisions may now
-- say 'pause' or 'promote', and a paused trial keeps its model and optimizer state here.
CREATE TABLE decisions_new (
    id            INTEGER PRIMARY KEY,
    trial_id      INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    epoch         INTEGER NOT NULL,
    rule          TEXT NOT NULL,            -- divergence, patience, threshold, median, extrapolation, asha
    action        TEXT NOT NULL CHECK (action IN ('continue', 'stop', 'diverge', 'pause', 'promote')),
    reason        TEXT NOT NULL,            -- one sentence for people
    details       TEXT NOT NULL,            -- the numbers compared, as JSON
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO decisions_new (id, trial_id, epoch, rule, action, reason, details, created_at)
    SELECT id, trial_id, epoch, rule, action, reason, details, created_at FROM decisions;
DROP TABLE decisions;
ALTER TABLE decisions_new RENAME TO decisions;
CREATE INDEX decisions_by_trial ON decisions (trial_id, epoch);

-- One row per paused trial (state 'pending' with a checkpoint): the trainer's saved state
-- after `epoch`, from which a promotion continues. Deleted when the trial finishes.
CREATE TABLE checkpoints (
    trial_id      INTEGER PRIMARY KEY REFERENCES trials(id) ON DELETE CASCADE,
    epoch         INTEGER NOT NULL,
    data          BLOB NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
