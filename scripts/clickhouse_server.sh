#!/usr/bin/env bash
# Start/stop a throwaway clickhouse-server for tests and development: listens on 127.0.0.1 only,
# config, data and logs under $CLICKHOUSE_DIR (default .dataloader/clickhouse), user `default`
# without a password. Ports: CLICKHOUSE_TCP_PORT (9000, native protocol), CLICKHOUSE_HTTP_PORT (8123).
# Usage: scripts/clickhouse_server.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$(realpath -m "${CLICKHOUSE_DIR:-.dataloader/clickhouse}")"
TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
PIDFILE="$DIR/clickhouse.pid"
BIN="$(command -v clickhouse-server || true)"

up() { python3 -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', $TCP_PORT)))"; }

write_config() {
  mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/log"
  cat >"$DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$DIR/log/server.log</log><errorlog>$DIR/log/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$TCP_PORT</tcp_port>
  <http_port>$HTTP_PORT</http_port>
  <path>$DIR/data/</path>
  <tmp_path>$DIR/tmp/</tmp_path>
  <user_files_path>$DIR/user_files/</user_files_path>
  <users_config>$DIR/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
  cat >"$DIR/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
}

case "${1:-}" in
  start)
    if up; then echo "clickhouse-server already answers on 127.0.0.1:$TCP_PORT"; exit 0; fi
    [ -n "$BIN" ] || { echo "clickhouse-server is not installed (apt-get install clickhouse-server)" >&2; exit 1; }
    write_config
    "$BIN" --config-file="$DIR/config.xml" --pid-file="$PIDFILE" --daemon
    for _ in $(seq 1 30); do up && { echo "clickhouse-server on 127.0.0.1:$TCP_PORT (data in $DIR)"; exit 0; }; sleep 1; done
    echo "clickhouse-server did not start; see $DIR/log/error.log" >&2; exit 1 ;;
  stop)
    if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; echo "stopped"; else echo "not running"; fi ;;
  status)
    if up; then echo "up on 127.0.0.1:$TCP_PORT"; else echo "down"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
