-- The data a sweep trained on, as JSON: source, SHA-256, rows read and dropped, features,
-- classes, the validation rows and the standardization statistics (see src/data/mod.rs,
-- DataRecord). NULL for sweeps stored before this column existed.
ALTER TABLE sweeps ADD COLUMN data TEXT CHECK (data IS NULL OR json_valid(data));
