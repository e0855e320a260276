#!/usr/bin/env bash
# Start the classroom registry on 127.0.0.1:5000 unless one answers already.
# Debian's docker-registry with the project's config/registry.yml; storage under data/registry.
set -euo pipefail
cd "$(dirname "$0")/.."
ADDR=127.0.0.1:5000
DATA="${TUTORIAL_REGISTRY_DIR:-$PWD/data/registry}"
answers() { curl -fsS -o /dev/null --max-time 2 "http://$ADDR/v2/" 2>/dev/null || \
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$ADDR/v2/', timeout=2)" 2>/dev/null; }
# Which registry this script started, and where it keeps its data. Learner cleanup deletes
# repositories in that folder, so a registry left running by another checkout (its own data
# folder) is replaced rather than reused.
STATE=/tmp/tutorial-registry.state
if answers; then
  if [ -f "$STATE" ]; then
    read -r old_pid old_data < "$STATE" || true
    if [ "${old_data:-}" != "$DATA" ] && kill -0 "${old_pid:-0}" 2>/dev/null; then
      echo "the registry at $ADDR keeps its data in $old_data, not $DATA: restarting it"
      kill "$old_pid"
      for _ in $(seq 1 50); do answers || break; sleep 0.2; done
    fi
  fi
fi
if answers; then
  echo "registry answers at $ADDR"
  exit 0
fi
BIN=$(command -v docker-registry || true)
if [ -z "$BIN" ]; then
  echo "docker-registry is not installed: apt-get install docker-registry" >&2
  exit 1
fi
mkdir -p "$DATA"
REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$DATA" setsid nohup "$BIN" serve config/registry.yml \
  >"$DATA/../registry.log" 2>&1 &
echo "$! $DATA" > "$STATE"
for _ in $(seq 1 50); do
  if answers; then
    echo "registry started at $ADDR (storage $DATA)"
    exit 0
  fi
  sleep 0.2
done
echo "the registry did not start; see $DATA/../registry.log" >&2
exit 1
