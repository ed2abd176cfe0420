#!/bin/sh
# First start of the database: the read-only role `glaze sql` logs in as, with its own password.
# Migration 0007 then gives it its limits and grants (it only creates the role when it is missing).
set -eu
psql -v ON_ERROR_STOP=1 -v pw="$GLAZE_READER_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE glaze_reader LOGIN PASSWORD :'pw' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
SQL
