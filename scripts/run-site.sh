#!/usr/bin/env bash
# Serve the site with its companions: the Docker gateway and the reaper run beside daphne and stop
# with it. Used by `make run`; docker-compose runs each as its own service instead.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; wait; }
trap cleanup EXIT INT TERM
if docker version >/dev/null 2>&1; then
  $PY manage.py run_gateway & pids+=($!)
  if [ -f sandbox/management/commands/reap_sandboxes.py ]; then
    $PY manage.py reap_sandboxes --loop & pids+=($!)
  fi
else
  echo "No Docker engine answers: the site runs, and the lesson pages say how to start one." >&2
fi
.venv/bin/daphne -b "${HOST:-127.0.0.1}" -p "${PORT:-8000}" tutorial.asgi:application
