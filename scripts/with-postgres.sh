#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL on 127.0.0.1 ($PG_PORT, default 55432) and TEST_POSTGRES_URL set.
# Installs Debian's postgresql if missing. The server refuses to run as root, so it runs as user postgres.
set -euo pipefail

PG_PORT="${PG_PORT:-55432}"

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; fi
}

if [ -z "$(pg_bin)" ]; then
  echo "== installing Debian's postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
PGBIN=$(pg_bin)

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

PGDATA=$(mktemp -d /tmp/co-pg.XXXXXX)
PGSOCK=$(mktemp -d /tmp/co-pgsock.XXXXXX)
if [ "$(id -u)" = 0 ]; then chown postgres "$PGDATA" "$PGSOCK"; fi
stop_pg() {
  as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDATA" "$PGSOCK"
}
trap stop_pg EXIT

echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT" >&2
as_postgres "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
  -o "-p $PG_PORT -k $PGSOCK -c listen_addresses=127.0.0.1 ${PG_EXTRA_OPTS:-}" start >/dev/null

export TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
"$@"
