#!/usr/bin/env bash
# Start a private Redis for the site's channel layer (events between its server processes, the
# gateway and the reaper), idempotently: a unix socket under the data folder, no TCP port, no
# persistence (it only carries events). Prints the REDIS_URL that reaches it.
# Needs Debian's `redis-server`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${TUTORIAL_DATA_DIR:-$(pwd)/data}/redis"
sock="$dir/redis.sock"
command -v redis-server >/dev/null 2>&1 || { echo "start-redis: apt-get install redis-server" >&2; exit 1; }
mkdir -p "$dir"
if ! redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG; then
  rm -f "$sock"
  redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --daemonize yes --save "" \
    --appendonly no --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" >&2
  for _ in $(seq 1 40); do
    redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG && break
    sleep 0.25
  done
  redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG \
    || { echo "start-redis: Redis did not answer on $sock within 10 s; see $dir/redis.log" >&2; exit 1; }
fi
echo "unix://$sock"
