-- Expand step: a nullable column, so a process that does not know it keeps working.
ALTER TABLE visits ADD COLUMN last_color TEXT;
