-- The sweep file's text as last run (comments and layout included), shown in the report.
-- NULL for sweeps stored before this column existed; the report then shows the stored spec.
ALTER TABLE sweeps ADD COLUMN source TEXT;
