-- The data a sweep trained on, as JSON: source, SHA-256, rows read and dropped, features,
-- classes, the validation rows and the standardization statistics (see src/data/mod.rs,
-- DataRecord). NULL for sweeps stored before this column existed.
ALTER TABLE sweeps ADD COLUMN data TEXT CHECK (data IS NULL OR json_valid(data));

-- The views gain the hyperparameters added with search spaces and the regression metric.
-- Keys a trial does not have (momentum under Adam) are NULL.
DROP VIEW trial_summary;
CREATE VIEW trial_summary AS
SELECT
    t.id AS trial_id,
    s.name AS sweep,
    t.ordinal,
    t.state,
    json_extract(t.config, '$.learning_rate')  AS learning_rate,
    json_extract(t.config, '$.batch_size')     AS batch_size,
    json_extract(t.config, '$.epochs')         AS epochs,
    json_extract(t.config, '$.activation')     AS activation,
    json_extract(t.config, '$.optimizer')      AS optimizer,
    json_extract(t.config, '$.hidden')         AS hidden,
    json_extract(t.config, '$.seed')           AS seed,
    json_extract(t.config, '$.train_fraction') AS train_fraction,
    json_extract(t.config, '$.lr_schedule')    AS lr_schedule,
    json_extract(t.config, '$.momentum')       AS momentum,
    json_extract(t.config, '$.beta1')          AS beta1,
    json_extract(t.config, '$.beta2')          AS beta2,
    json_extract(t.config, '$.weight_decay')   AS weight_decay,
    json_extract(t.config, '$.dropout')        AS dropout,
    json_extract(t.config, '$.negative_slope') AS negative_slope,
    json_extract(t.config, '$.task')           AS task,
    t.epochs_run,
    (SELECT min(m.value) FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_loss' AND m.kind = 'finite') AS best_val_loss,
    (SELECT max(m.value) FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_accuracy' AND m.kind = 'finite') AS best_val_accuracy,
    (SELECT min(m.value) FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_rmse' AND m.kind = 'finite') AS best_val_rmse,
    (SELECT m.value FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_loss' ORDER BY m.epoch DESC LIMIT 1) AS final_val_loss,
    (SELECT m.value FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_accuracy' ORDER BY m.epoch DESC LIMIT 1) AS final_val_accuracy,
    (SELECT m.value FROM metrics m
      WHERE m.trial_id = t.id AND m.name = 'val_rmse' ORDER BY m.epoch DESC LIMIT 1) AS final_val_rmse,
    t.best_epoch,
    t.best_value,
    t.stop_reason,
    t.attempt,
    t.started_at,
    t.finished_at
FROM trials t JOIN sweeps s ON s.id = t.sweep_id;

DROP VIEW epoch_metrics;
CREATE VIEW epoch_metrics AS
SELECT
    trial_id,
    epoch,
    max(CASE WHEN name = 'train_loss'    THEN value END) AS train_loss,
    max(CASE WHEN name = 'val_loss'      THEN value END) AS val_loss,
    max(CASE WHEN name = 'val_accuracy'  THEN value END) AS val_accuracy,
    max(CASE WHEN name = 'val_rmse'      THEN value END) AS val_rmse,
    max(CASE WHEN name = 'epoch_seconds' THEN value END) AS epoch_seconds
FROM metrics
GROUP BY trial_id, epoch;
