#!/usr/bin/env bash
# Start/stop a throwaway PostgreSQL with logical decoding for the cdc strategy's tests: listens on
# 127.0.0.1:$CDC_PG_PORT (5441) only, trust auth for `postgres`, data under $CDC_PG_DIR
# (default /tmp/cdc-pg-data), wal_level=logical with room for 64 slots and WAL senders.
# Binaries: Debian's PostgreSQL (/usr/lib/postgresql/<newest>/bin) or $CDC_PG_BIN. As root the server
# runs as the `postgres` system user (PostgreSQL refuses to run as root).
# Usage: scripts/cdc_postgres.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$(realpath -m "${CDC_PG_DIR:-/tmp/cdc-pg-data}")"
PORT="${CDC_PG_PORT:-5441}"
BIN="${CDC_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"

up() { python3 -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))"; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
  start)
    if up; then echo "PostgreSQL already answers on 127.0.0.1:$PORT"; exit 0; fi
    [ -x "$BIN/pg_ctl" ] || { echo "no PostgreSQL binaries (apt-get install postgresql, or set CDC_PG_BIN)" >&2; exit 1; }
    if [ ! -f "$DIR/PG_VERSION" ]; then
      mkdir -p "$DIR"
      [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
      chmod 700 "$DIR"
      as_owner "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    as_owner "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c wal_level=logical -c max_replication_slots=64 -c max_wal_senders=64 -c fsync=off" >/dev/null
    up && echo "PostgreSQL (wal_level=logical) on 127.0.0.1:$PORT (data in $DIR)" ;;
  stop)
    if [ -f "$DIR/postmaster.pid" ]; then as_owner "$BIN/pg_ctl" -D "$DIR" -m fast -w stop >/dev/null; echo "stopped"; else echo "not running"; fi ;;
  status)
    if up; then echo "up on 127.0.0.1:$PORT"; else echo "down"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
