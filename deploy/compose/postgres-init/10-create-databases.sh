#!/bin/sh
# Run once by the postgres image, on the first start with an empty data volume
# (/docker-entrypoint-initdb.d). Creates one role and one database per consumer, so that
# fraudsvc and MLflow never share credentials or schemas:
#   fraudsvc  owner of database fraudsvc (the service; `fraudsvc migrate` builds its tables)
#   mlflow    owner of database mlflow   (the tracking server builds its own tables)
# The passwords come from the container's environment (deploy/compose.env); psql quotes them.
set -eu

: "${FRAUDSVC_DB_PASSWORD:?FRAUDSVC_DB_PASSWORD must be set (deploy/compose.env)}"
: "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD must be set (deploy/compose.env)}"

psql --no-psqlrc -v ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v fraudsvc_password="$FRAUDSVC_DB_PASSWORD" \
    -v mlflow_password="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE fraudsvc LOGIN PASSWORD :'fraudsvc_password';
CREATE DATABASE fraudsvc OWNER fraudsvc;
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE mlflow OWNER mlflow;
-- PostgreSQL 15+ no longer lets every role create objects in public; each owner gets it back
-- in its own database only.
\connect fraudsvc
ALTER SCHEMA public OWNER TO fraudsvc;
\connect mlflow
ALTER SCHEMA public OWNER TO mlflow;
SQL
