#!/usr/bin/env bash
# Throwaway PostgreSQL 15 and Redis servers for the tests, on free loopback ports in a temp dir.
#   eval "$(scripts/test-services.sh start)"   exports LATCHKEY_TEST_DATABASE_URL, LATCHKEY_TEST_REDIS_URL
#                                               and LATCHKEY_TEST_SERVICES_DIR (only for what is installed)
#   scripts/test-services.sh stop "$LATCHKEY_TEST_SERVICES_DIR"
# PostgreSQL runs with fsync off (test data only). As root it runs as the 'postgres' user: initdb refuses root.
# Used by .ci/run and by the vitest global setup (test/global-setup.ts) when no URL is given.
set -euo pipefail

pg_bindir() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start() {
  local dir; dir=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-services.XXXXXX"); chmod 755 "$dir"
  echo "export LATCHKEY_TEST_SERVICES_DIR=$dir"
  local bin; bin=$(pg_bindir || true)
  if [ -n "$bin" ] && [ -x "$bin/initdb" ]; then
    mkdir -p "$dir/pg"; [ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
    local port; port=$(free_port)
    as_pg "$bin/initdb" -D "$dir/pg/data" -U latchkey --auth=trust -E UTF8 --no-sync >"$dir/pg/initdb.log" 2>&1
    as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/pg.log" -w -t 60 \
      -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U latchkey latchkey
    echo "$bin" > "$dir/pg/bindir"
    echo "export LATCHKEY_TEST_DATABASE_URL=postgres://latchkey@127.0.0.1:$port/latchkey"
  fi
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p "$dir/redis"
    local rport; rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir/redis" --daemonize yes \
      --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" --save '' --appendonly no >/dev/null
    for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
    echo "$rport" > "$dir/redis/port"
    echo "export LATCHKEY_TEST_REDIS_URL=redis://127.0.0.1:$rport"
  fi
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -f "$dir/redis/port" ]; then redis-cli -p "$(cat "$dir/redis/port")" shutdown nosave >/dev/null 2>&1 || true; fi
  if [ -f "$dir/pg/bindir" ]; then as_pg "$(cat "$dir/pg/bindir")/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:?services dir}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
