#!/usr/bin/env bash
# First start of the PostgreSQL container (docker-entrypoint-initdb.d): one role and one database
# per storing service, each owned by its own role, so a service can read no other service's data
# (SPEC: "a service never reads another service's database").
#
# The password of each role is read from that service's pgpass secret (host:port:db:user:password),
# the same file the service connects with, so there is one copy of each password. Nothing secret
# is echoed; psql gets the password as a variable, never in the SQL text or on the command line.
#
# TTP_SECRETS_DIR and TTP_DB_PREFIX exist for the test that runs this script against a scratch server.
set -euo pipefail
secrets_dir="${TTP_SECRETS_DIR:-/run/secrets}"
prefix="${TTP_DB_PREFIX:-ttp_}"

for service in ingest aggregate report audit; do
  pgpass="${secrets_dir}/${service}.pgpass"
  if [ ! -r "$pgpass" ]; then
    echo "init-databases: $pgpass is missing or unreadable" >&2
    exit 1
  fi
  password=$(head -n 1 "$pgpass" | cut -d: -f5-)
  if [ "${#password}" -lt 24 ]; then
    echo "init-databases: the password in $pgpass is shorter than 24 characters" >&2
    exit 1
  fi
  role="${prefix}${service}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v role="$role" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'role', :'role') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'role') \gexec
SQL
  echo "init-databases: created role and database ${role}"
done
