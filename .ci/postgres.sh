#!/usr/bin/env bash
# Best effort: a local PostgreSQL server on loopback for the broker's PostgreSQL test.
# Prints the SQLAlchemy URL on success; prints nothing (and the test skips) otherwise.
set -u
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } \
    >/dev/null 2>&1 || exit 0
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
pg_lsclusters -h 2>/dev/null | grep -q "^$version main" \
  || pg_createcluster "$version" main >/dev/null 2>&1 || exit 0
pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
for _ in 1 2 3 4 5 6 7 8 9 10; do
  su postgres -c "pg_isready -q -h 127.0.0.1" 2>/dev/null && break
  sleep 1
done
su postgres -c "psql -q -h 127.0.0.1 -tc \"SELECT 1 FROM pg_roles WHERE rolname='carbonfed'\"" \
  2>/dev/null | grep -q 1 \
  || su postgres -c "psql -q -c \"CREATE ROLE carbonfed LOGIN PASSWORD 'carbonfed'\"" \
    >/dev/null 2>&1
su postgres -c "psql -q -h 127.0.0.1 -tc \"SELECT 1 FROM pg_database WHERE datname='carbonfed_ci'\"" \
  2>/dev/null | grep -q 1 \
  || su postgres -c "psql -q -c 'CREATE DATABASE carbonfed_ci OWNER carbonfed'" >/dev/null 2>&1
PGPASSWORD=carbonfed psql -q -h 127.0.0.1 -U carbonfed -d carbonfed_ci -c "SELECT 1" \
  >/dev/null 2>&1 || exit 0
echo "postgresql+psycopg://carbonfed:carbonfed@127.0.0.1:5432/carbonfed_ci"
