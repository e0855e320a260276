#!/usr/bin/env bash
# Start Debian-packaged PostgreSQL and Redis on loopback, idempotently, for the classroom settings
# (tests of the multi-process path, or a classroom without containers). Needs root and the Debian
# packages `postgresql` and `redis-server` (.ci/run installs them).
#
# Prints the settings that reach them, e.g. for `eval "$(scripts/start-postgres-redis.sh)"`:
#   export DATABASE_URL=postgres://tutorial:tutorial@127.0.0.1:5432/tutorial
#   export REDIS_URL=redis://127.0.0.1:6379/0
# The role may create databases (Django's test runner and the multi-process test make their own).
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir="${TUTORIAL_DATA_DIR:-$(pwd)/data}"
pg_port="${TUTORIAL_PG_PORT:-5432}"
pg_user="${TUTORIAL_PG_USER:-tutorial}"
pg_password="${TUTORIAL_PG_PASSWORD:-tutorial}"
pg_database="${TUTORIAL_PG_DATABASE:-tutorial}"
redis_port="${TUTORIAL_REDIS_PORT:-6379}"

fail() { echo "start-postgres-redis: $*" >&2; exit 1; }

# --- PostgreSQL: the Debian cluster "main" of the newest installed version ------------------------
command -v pg_ctlcluster >/dev/null 2>&1 || fail "PostgreSQL is not installed: apt-get install postgresql"
pg_version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
[ -n "$pg_version" ] || fail "no PostgreSQL server under /usr/lib/postgresql: apt-get install postgresql"
if ! pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main"' | grep -q .; then
  pg_createcluster "$pg_version" main --port "$pg_port" >&2
fi
# A killed postmaster leaves postmaster.pid behind; pg_ctlcluster copes with a stale one.
if ! pg_isready -q -h 127.0.0.1 -p "$pg_port"; then
  pg_ctlcluster "$pg_version" main start >&2 || true
fi
for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
  sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$pg_port" || fail "PostgreSQL did not answer on 127.0.0.1:$pg_port within 30 s; see /var/log/postgresql/"

psql_admin() { runuser -u postgres -- psql -p "$pg_port" -v ON_ERROR_STOP=1 -qtAX "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$pg_user'")" != "1" ]; then
  psql_admin -c "CREATE ROLE \"$pg_user\" LOGIN CREATEDB PASSWORD '$pg_password'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$pg_database'")" != "1" ]; then
  psql_admin -c "CREATE DATABASE \"$pg_database\" OWNER \"$pg_user\"" >&2
fi

# --- Redis: a daemon on loopback, no persistence (it only carries channel-layer events) ----------
command -v redis-server >/dev/null 2>&1 || fail "Redis is not installed: apt-get install redis-server"
if ! redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
  mkdir -p "$data_dir/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
    --dir "$data_dir/redis" --logfile "$data_dir/redis/redis.log" \
    --pidfile "$data_dir/redis/redis.pid" >&2
fi
for _ in $(seq 1 40); do
  redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.25
done
redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG \
  || fail "Redis did not answer on 127.0.0.1:$redis_port within 10 s; see $data_dir/redis/redis.log"

echo "export DATABASE_URL=postgres://$pg_user:$pg_password@127.0.0.1:$pg_port/$pg_database"
echo "export REDIS_URL=redis://127.0.0.1:$redis_port/0"
