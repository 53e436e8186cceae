-- lcurve's schema, version 1. Users query these tables and views directly; see README.md.
-- Never edit a migration once it has landed: add a new one.

CREATE TABLE sweeps (
    id            INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even after --replace
    name          TEXT NOT NULL UNIQUE,
    description   TEXT,
    spec          TEXT NOT NULL,            -- the validated sweep file, as JSON
    spec_hash     TEXT NOT NULL,            -- SHA-256 of spec
    lcurve_version TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at   TEXT                      -- set when no trial is pending or running
);

CREATE TABLE trials (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    sweep_id      INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    ordinal       INTEGER NOT NULL,         -- 0-based position in grid order
    config        TEXT NOT NULL,            -- every hyperparameter, as JSON
    config_hash   TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'completed', 'stopped', 'diverged', 'failed')),
    attempt       INTEGER NOT NULL DEFAULT 0, -- incremented by each claim
    started_at    TEXT,
    finished_at   TEXT,
    epochs_run    INTEGER,
    best_epoch    INTEGER,                  -- by the sweep's stopping metric (val_loss by default)
    best_value    REAL,
    stop_reason   TEXT,
    error         TEXT,
    UNIQUE (sweep_id, config_hash),
    UNIQUE (sweep_id, ordinal)
);
CREATE INDEX trials_by_state ON trials (sweep_id, state, ordinal);

-- Long format: one row per (trial, metric, epoch). `value` is NULL for NaN (SQLite cannot
-- store a NaN REAL); `kind` always says what the number was.
CREATE TABLE metrics (
    trial_id      INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    epoch         INTEGER NOT NULL,         -- 1-based
    value         REAL,
    kind          TEXT NOT NULL CHECK (kind IN ('finite', 'nan', 'inf', '-inf')),
    PRIMARY KEY (trial_id, name, epoch)
) WITHOUT ROWID;

CREATE TABLE decisions (
    id            INTEGER PRIMARY KEY,
    trial_id      INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    epoch         INTEGER NOT NULL,
    rule          TEXT NOT NULL,            -- patience, divergence
    action        TEXT NOT NULL CHECK (action IN ('continue', 'stop', 'diverge')),
    reason        TEXT NOT NULL,            -- one sentence for people
    details       TEXT NOT NULL,            -- the numbers compared, as JSON
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX decisions_by_trial ON decisions (trial_id, epoch);

-- One row per trial: hyperparameters as columns, best and final metrics.
CREATE VIEW trial_summary AS
SELECT
    t.id AS trial_id,
    s.name AS sweep,
    t.ordinal,
    t.state,
    json_extract(t.config, '$.learning_rate') AS learning_rate,
    json_extract(t.config, '$.batch_size')    AS batch_size,
    json_extract(t.config, '$.epochs')        AS epochs,
    json_extract(t.config, '$.activation')    AS activation,
    json_extract(t.config, '$.optimizer')     AS optimizer,
    json_extract(t.config, '$.hidden')        AS hidden,
    json_extract(t.config, '$.seed')          AS seed,
    t.epochs_run,
    (SELECT min(m.value) FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_loss' AND m.kind = 'finite') AS best_val_loss,
    (SELECT max(m.value) FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_accuracy' AND m.kind = 'finite') AS best_val_accuracy,
    (SELECT m.value FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_loss' ORDER BY m.epoch DESC LIMIT 1) AS final_val_loss,
    (SELECT m.value FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_accuracy' ORDER BY m.epoch DESC LIMIT 1) AS final_val_accuracy,
    t.best_epoch,
    t.best_value,
    t.stop_reason,
    t.attempt,
    t.started_at,
    t.finished_at
FROM trials t JOIN sweeps s ON s.id = t.sweep_id;

-- One row per (trial, epoch) with each metric as a column (NULL where NaN).
CREATE VIEW epoch_metrics AS
SELECT
    trial_id,
    epoch,
    max(CASE WHEN name = 'train_loss'    THEN value END) AS train_loss,
    max(CASE WHEN name = 'val_loss'      THEN value END) AS val_loss,
    max(CASE WHEN name = 'val_accuracy'  THEN value END) AS val_accuracy,
    max(CASE WHEN name = 'epoch_seconds' THEN value END) AS epoch_seconds
FROM metrics
GROUP BY trial_id, epoch;
