-- Dagster's own storage lives in a database beside the glaze data.
CREATE DATABASE dagster OWNER glaze;
