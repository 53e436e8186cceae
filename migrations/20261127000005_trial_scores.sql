-- Each finished trial keeps its summary numbers, so `lcurve show` and `lcurve ls` read the
-- trials table alone instead of every metric row (10,000 trials x 100 epochs answer in
-- milliseconds). Set when a trial finishes; NULL while it runs (they are then computed from
-- `metrics`). `scored_epochs` is the number of val_loss rows, and says the others are set.
ALTER TABLE trials ADD COLUMN best_val_loss REAL;
ALTER TABLE trials ADD COLUMN best_val_accuracy REAL;
ALTER TABLE trials ADD COLUMN best_val_rmse REAL;
ALTER TABLE trials ADD COLUMN final_val_loss REAL;
ALTER TABLE trials ADD COLUMN final_val_kind TEXT;
ALTER TABLE trials ADD COLUMN scored_epochs INTEGER;

-- Trials finished before this migration.
UPDATE trials SET
    best_val_loss = (SELECT min(value) FROM metrics m
        WHERE m.trial_id = trials.id AND m.name = 'val_loss' AND m.kind = 'finite'),
    best_val_accuracy = (SELECT max(value) FROM metrics m
        WHERE m.trial_id = trials.id AND m.name = 'val_accuracy' AND m.kind = 'finite'),
    best_val_rmse = (SELECT min(value) FROM metrics m
        WHERE m.trial_id = trials.id AND m.name = 'val_rmse' AND m.kind = 'finite'),
    final_val_loss = (SELECT value FROM metrics m
        WHERE m.trial_id = trials.id AND m.name = 'val_loss' ORDER BY m.epoch DESC LIMIT 1),
    final_val_kind = (SELECT kind FROM metrics m
        WHERE m.trial_id = trials.id AND m.name = 'val_loss' ORDER BY m.epoch DESC LIMIT 1),
    scored_epochs = (SELECT count(*) FROM metrics m
        WHERE m.trial_id = trials.id AND m.name = 'val_loss')
WHERE state IN ('completed', 'stopped', 'diverged', 'failed');
