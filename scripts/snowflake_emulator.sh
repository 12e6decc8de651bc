#!/usr/bin/env bash
# Start/stop the Snowflake emulator (fakesnow's server mode, in memory) that the real
# snowflake-connector-python talks to. Listens on 127.0.0.1:$SNOWFLAKE_EMULATOR_PORT (8091);
# pid and log under $SNOWFLAKE_EMULATOR_DIR (default .dataloader/fakesnow).
# Usage: scripts/snowflake_emulator.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$(realpath -m "${SNOWFLAKE_EMULATOR_DIR:-.dataloader/fakesnow}")"
PORT="${SNOWFLAKE_EMULATOR_PORT:-8091}"
BIN="${FAKESNOW:-.venv/bin/fakesnow}"

up() { python3 -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))"; }

case "${1:-}" in
  start)
    if up; then echo "Snowflake emulator already answers on 127.0.0.1:$PORT"; exit 0; fi
    [ -x "$BIN" ] || { echo "fakesnow is not installed: make install (extra 'emulators')" >&2; exit 1; }
    mkdir -p "$DIR"
    nohup "$BIN" --server --host 127.0.0.1 --port "$PORT" >"$DIR/server.log" 2>&1 &
    echo $! >"$DIR/fakesnow.pid"
    for _ in $(seq 1 30); do up && { echo "Snowflake emulator on 127.0.0.1:$PORT"; exit 0; }; sleep 1; done
    echo "the Snowflake emulator did not start; see $DIR/server.log" >&2; exit 1 ;;
  stop)
    if [ -f "$DIR/fakesnow.pid" ]; then kill "$(cat "$DIR/fakesnow.pid")" 2>/dev/null || true; rm -f "$DIR/fakesnow.pid"; echo "stopped"; else echo "not running"; fi ;;
  status)
    if up; then echo "up on 127.0.0.1:$PORT"; else echo "down"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
