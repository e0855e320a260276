#!/usr/bin/env bash
# Serve the site with its companions: the Docker gateway and the reaper run beside the site and
# stop with it. Used by `make run`; docker-compose runs each as its own service instead.
# With Debian's redis-server installed (and no REDIS_URL given), a private Redis on a unix socket
# carries events between processes, so the site runs one daphne per core (scripts/serve.py) and
# the reaper's and gateway's notices reach the consoles; without it, one daphne process.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# DEBUG is off: a bad Host header or a 404 must not show the settings or the URL list to a class.
# Lesson authors who want Django's debug pages ask for them: TUTORIAL_DEV=1 make run (or DJANGO_DEBUG=1).
if [ "${TUTORIAL_DEV:-0}" = "1" ]; then
  export DJANGO_DEBUG=1
else
  export DJANGO_DEBUG="${DJANGO_DEBUG:-0}"
fi
case "${DJANGO_DEBUG,,}" in 1|true|yes|on) debug=1 ;; *) debug=0 ;; esac
if [ "$debug" = 0 ] && [ -z "${DJANGO_SECRET_KEY:-}" ] && [ -z "${DJANGO_SECRET_KEY_FILE:-}" ]; then
  # One key for every server process of this machine, kept beside the database (mode 600).
  key_file="${TUTORIAL_DATA_DIR:-$(pwd)/data}/secret_key"
  mkdir -p "$(dirname "$key_file")"
  [ -s "$key_file" ] || (umask 077 && $PY -c 'import secrets; print(secrets.token_urlsafe(50))' > "$key_file")
  export DJANGO_SECRET_KEY_FILE="$key_file"
fi
if [ "$debug" = 0 ]; then
  # With DEBUG off, WhiteNoise serves the collected, hashed copies (xterm.js, htmx, the site's own).
  $PY manage.py collectstatic --noinput -v0 || exit 1
fi
pids=()
our_redis=""  # the private Redis's socket when this script started it: stopped with the site
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  wait
  if [ -n "$our_redis" ]; then redis-cli -s "$our_redis" shutdown nosave >/dev/null 2>&1; fi
}
trap cleanup EXIT INT TERM
if [ -z "${REDIS_URL:-}" ] && command -v redis-server >/dev/null 2>&1; then
  sock="${TUTORIAL_DATA_DIR:-$(pwd)/data}/redis/redis.sock"
  was_running=0
  redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG && was_running=1
  if url="$(./scripts/start-redis.sh)"; then
    export REDIS_URL="$url"
    [ "$was_running" = 1 ] || our_redis="$sock"
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
# Guests nobody can use any more (their session ended) go now and every hour (accounts/guests.py).
$PY manage.py remove_old_guests --every 3600 & pids+=($!)
# In the background and waited for, so a SIGTERM to this script runs the cleanup at once.
# --http-timeout: an application still silent after 5 minutes answers 503 (a Start on a slow
# cluster waits up to 90 s for a namespace). Slow *clients* are cut off by the request deadline
# in tutorial/body_limit.py (TUTORIAL_REQUEST_TIMEOUT); the websocket handshake keeps daphne's 5 s.
$PY scripts/serve.py --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --processes "${TUTORIAL_WEB_PROCESSES:-0}" \
  -- --http-timeout 300 &
pids+=($!)
wait "$!"
