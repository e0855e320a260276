#!/usr/bin/env bash
# Start the classroom registry on 127.0.0.1:5000 unless one answers already.
# Debian's docker-registry with the project's config/registry.yml; storage under data/registry.
set -euo pipefail
cd "$(dirname "$0")/.."
ADDR=127.0.0.1:5000
DATA="${TUTORIAL_REGISTRY_DIR:-$PWD/data/registry}"
answers() { curl -fsS -o /dev/null --max-time 2 "http://$ADDR/v2/" 2>/dev/null || \
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$ADDR/v2/', timeout=2)" 2>/dev/null; }
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
for _ in $(seq 1 50); do
  if answers; then
    echo "registry started at $ADDR (storage $DATA)"
    exit 0
  fi
  sleep 0.2
done
echo "the registry did not start; see $DATA/../registry.log" >&2
exit 1
