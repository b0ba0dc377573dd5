#!/usr/bin/env bash
# Makes sure Postgres and Redis answer at DATABASE_URL / REDIS_URL (defaults: 127.0.0.1:5432 and :6379).
# Starts the local Debian installs when they are present and we are root; otherwise says how to get them
# (docker compose). Creates the application database when it is missing. Idempotent.
set -euo pipefail

DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/aft}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"

hostport() { # URL default_port -> "host port"
  local rest="${1#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"; rest="${rest%%\?*}"
  local host="${rest%%:*}" port="${rest##*:}"
  [ "$port" = "$rest" ] && port="$2"
  echo "${host:-127.0.0.1} ${port}"
}
up() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_up() { for _ in $(seq 1 60); do up "$1" "$2" && return 0; sleep 0.5; done; return 1; }
compose_hint() {
  echo "  Start it yourself, or run the project's services with Docker:" >&2
  echo "    docker compose -f docker/compose.yml up -d postgres redis" >&2
}

read -r PGHOST PGPORT < <(hostport "$DATABASE_URL" 5432)
read -r RHOST RPORT < <(hostport "$REDIS_URL" 6379)

if ! up "$PGHOST" "$PGPORT"; then
  if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "services: starting the local PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  fi
  if ! wait_up "$PGHOST" "$PGPORT"; then
    echo "services: PostgreSQL is not reachable at $PGHOST:$PGPORT" >&2; compose_hint; exit 1
  fi
fi

if ! up "$RHOST" "$RPORT"; then
  if [ "$(id -u)" = 0 ] && command -v redis-server >/dev/null; then
    echo "services: starting the local Redis" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no >/dev/null
  fi
  if ! wait_up "$RHOST" "$RPORT"; then
    echo "services: Redis is not reachable at $RHOST:$RPORT" >&2; compose_hint; exit 1
  fi
fi

# the application database
node --input-type=module -e "
  import pg from 'pg';
  const u = new URL(process.argv[1]);
  const name = decodeURIComponent(u.pathname.slice(1)) || 'aft';
  u.pathname = '/postgres';
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  const r = await c.query('SELECT 1 FROM pg_database WHERE datname = \$1', [name]);
  if (!r.rowCount) { await c.query('CREATE DATABASE \"' + name.replace(/\"/g, '') + '\"'); console.error('services: created database ' + name); }
  await c.end();
" "$DATABASE_URL"
echo "services: PostgreSQL at $PGHOST:$PGPORT and Redis at $RHOST:$RPORT are up" >&2
