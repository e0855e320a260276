#!/usr/bin/env bash
# Serve the site with its companions: the Docker gateway and the reaper run beside the site and
# stop with it. Used by `make run`; docker-compose runs each as its own service instead.
# With Debian's redis-server installed (and no REDIS_URL given), a private Redis on a unix socket
# carries events between processes, so the site runs one daphne per core (scripts/serve.py) and
# the reaper's and gateway's notices reach the consoles; without it, one daphne process.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; wait; }
trap cleanup EXIT INT TERM
if [ -z "${REDIS_URL:-}" ] && command -v redis-server >/dev/null 2>&1; then
  if url="$(./scripts/start-redis.sh)"; then
    export REDIS_URL="$url"
  fi
fi
if [ -z "${REDIS_URL:-}" ]; then
  echo "No Redis (apt-get install redis-server): one server process, and the reaper's and gateway's notices do not reach open consoles." >&2
fi
if docker version >/dev/null 2>&1; then
  $PY manage.py run_gateway & pids+=($!)
  if [ -f sandbox/management/commands/reap_sandboxes.py ]; then
    $PY manage.py reap_sandboxes --loop & pids+=($!)
  fi
else
  echo "No Docker engine answers: the site runs, and the lesson pages say how to start one." >&2
fi
# In the background and waited for, so a SIGTERM to this script runs the cleanup at once.
$PY scripts/serve.py --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --processes "${TUTORIAL_WEB_PROCESSES:-0}" &
pids+=($!)
wait "$!"
