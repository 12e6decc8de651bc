#!/usr/bin/env bash
# Start/stop a throwaway MariaDB with the row-based binlog for the cdc capture's tests: listens on
# 127.0.0.1:$CDC_MARIADB_PORT (3341) only, `root` without a password, data, binlogs, socket and pid
# under $CDC_MARIADB_DIR (default /tmp/cdc-maria-data). log_bin with binlog_format=ROW,
# binlog_row_image=FULL and binlog_row_metadata=FULL (what pipes_workers/cdc/mysql_capture.py needs);
# the server's own time zone is +05:30 so the tests see that TIMESTAMP values are read as UTC.
# It never reads the machine's my.cnf (--no-defaults): the machine's MariaDB on 3306 is left alone.
# Usage: scripts/cdc_mariadb.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$(realpath -m "${CDC_MARIADB_DIR:-/tmp/cdc-maria-data}")"
PORT="${CDC_MARIADB_PORT:-3341}"
MARIADBD="$(command -v mariadbd || ls /usr/sbin/mariadbd 2>/dev/null || true)"
INSTALL_DB="$(command -v mariadb-install-db || true)"
# As root the server runs as root (--user=root): the data directory is ours, under /tmp.
RUN_AS="$(id -un)"

up() { python3 -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))"; }

case "${1:-}" in
  start)
    if up; then echo "MariaDB already answers on 127.0.0.1:$PORT"; exit 0; fi
    [ -n "$MARIADBD" ] && [ -n "$INSTALL_DB" ] || { echo "no MariaDB binaries (apt-get install mariadb-server)" >&2; exit 1; }
    if [ ! -d "$DIR/data/mysql" ]; then
      mkdir -p "$DIR/data"
      "$INSTALL_DB" --no-defaults --user="$RUN_AS" --datadir="$DIR/data" \
        --auth-root-authentication-method=normal --skip-test-db >"$DIR/install.log" 2>&1 \
        || { echo "mariadb-install-db failed; see $DIR/install.log" >&2; exit 1; }
    fi
    "$MARIADBD" --no-defaults --user="$RUN_AS" --datadir="$DIR/data" --bind-address=127.0.0.1 \
      --port="$PORT" --socket="$DIR/mariadb.sock" --pid-file="$DIR/mariadb.pid" \
      --log-error="$DIR/error.log" --server-id=3341 --log-bin="$DIR/data/cdc-bin" \
      --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
      --default-time-zone=+05:30 --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
      --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
      --skip-name-resolve >/dev/null 2>&1 &
    for _ in $(seq 1 60); do up && { echo "MariaDB (binlog ROW) on 127.0.0.1:$PORT (data in $DIR)"; exit 0; }; sleep 1; done
    echo "MariaDB did not start; see $DIR/error.log" >&2; exit 1 ;;
  stop)
    if [ -f "$DIR/mariadb.pid" ]; then
      pid="$(cat "$DIR/mariadb.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      echo "stopped"
    else echo "not running"; fi ;;
  status)
    if up; then echo "up on 127.0.0.1:$PORT"; else echo "down"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
