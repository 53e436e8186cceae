-- The decisions that end a trial (stop, diverge), by trial and epoch. The report's stop
-- marks are those, and reading them walked every decision of the sweep's trials, mostly the
-- divergence guard's `continue` row of each epoch: 0.16-0.3 ms per report for the digits
-- sweep's 960 rows, 165 ms for the million of 10,000 trials of 100 epochs. Partial, so a
-- `continue` row adds nothing to it.
CREATE INDEX decision_ends ON decisions (trial_id, epoch) WHERE action IN ('stop', 'diverge');
