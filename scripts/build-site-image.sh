#!/usr/bin/env bash
# Build the site's image for a Kubernetes cluster offline (no base-image registry is needed) and
# push it to the classroom registry. Prints the image as the cluster pulls it, on the last line.
#
#   scripts/build-site-image.sh            ->  localhost:5000/tutorial/site:<content hash>
#
# Two layers, each cached by what it is made of:
#   base  Debian (debootstrap: python3, postgresql, redis-server, docker-registry) plus a venv
#         at /opt/venv from requirements.txt pinned by requirements.lock, imported with
#         `docker import` as tutorial/site-base:<key>. The key covers the package list and the
#         requirements, so it is rebuilt only when they change (minutes); kept in the engine, with
#         the pristine Debian tree under $TUTORIAL_IMAGE_CACHE.
#   app   the repository's files (tracked and new, not ignored), the browser libraries from
#         node_modules (scripts/vendor-assets.sh) and collectstatic's hashed files, COPYed onto the
#         base: seconds.
# One image runs every part (site, reaper, PostgreSQL, Redis, the registry): one build, one pull.
# It holds no Docker client and needs no Docker socket.
#
# Environment: TUTORIAL_IMAGE_CACHE (default ~/.cache/tutorial-site-image), TUTORIAL_REGISTRY (where
# this machine pushes, default 127.0.0.1:5000), TUTORIAL_K8S_LESSON_REGISTRY (the same registry as
# the cluster's nodes name it, default localhost:5000), DEBIAN_MIRROR.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE="${TUTORIAL_IMAGE_CACHE:-$HOME/.cache/tutorial-site-image}"
PUSH_REGISTRY="${TUTORIAL_REGISTRY:-127.0.0.1:5000}"
PULL_REGISTRY="${TUTORIAL_K8S_LESSON_REGISTRY:-localhost:5000}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,postgresql,redis-server,docker-registry,procps
# The one user every part runs as (pods set runAsUser to it; Pod Security `restricted` wants non-root).
APP_UID=10001
FORMAT=1  # bump when the way the base is made changes

log() { echo "build-site-image: $*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { log "$1 is needed: $2"; exit 1; }; }
need docker "a Docker engine builds and pushes the image (make engine)"
need debootstrap "apt-get install debootstrap"
[ "$(id -u)" = 0 ] || { log "debootstrap and chroot need root"; exit 1; }
curl -fsS -o /dev/null --max-time 5 "http://$PUSH_REGISTRY/v2/" \
  || { log "no registry answers at $PUSH_REGISTRY (scripts/start-registry.sh)"; exit 1; }
for lib in @xterm/xterm/lib/xterm.js codemirror/lib/codemirror.js; do
  [ -f "node_modules/$lib" ] || { log "node_modules/$lib is missing: make assets"; exit 1; }
done
mkdir -p "$CACHE"

# --- base ---------------------------------------------------------------------------------------
debian_key=$(printf '%s\n' "$FORMAT" "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)
base_key=$(cat <(printf '%s\n' "$debian_key" "$APP_UID") requirements.txt requirements.lock | sha256sum | cut -c1-12)
BASE="tutorial/site-base:$base_key"
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  debian="$CACHE/debian-$debian_key"
  if [ ! -f "$debian/.complete" ]; then
    log "debootstrap $SUITE into $debian (once; a few minutes)"
    rm -rf "$debian.tmp"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$debian.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { log "debootstrap failed: $CACHE/debootstrap.log"; tail -5 "$CACHE/debootstrap.log" >&2; exit 1; }
    # Debian starts services on install; a build root must not keep any running.
    rm -rf "$debian.tmp/var/cache/apt/archives/"*.deb "$debian.tmp/var/lib/apt/lists/"*
    touch "$debian.tmp/.complete"
    mv "$debian.tmp" "$debian"
  fi
  work="$CACHE/base-$base_key.tmp"
  rm -rf "$work"
  log "base $BASE: Debian tree + venv from requirements.lock"
  cp -a "$debian" "$work"
  rm -f "$work/.complete"
  # Wheels are fetched by this machine's pip (its index and certificates), then installed in the
  # tree offline: the tree's Python is Debian's 3.11, the one this machine's venv runs.
  wheels="$CACHE/wheels-$base_key"
  if [ ! -f "$wheels/.complete" ]; then
    rm -rf "$wheels" && mkdir -p "$wheels"
    # Markers are judged for the tree's Python (Debian 12's 3.11.2 needs async-timeout for redis).
    tree_python=$(chroot "$debian" /usr/bin/python3 -c 'import platform; print(platform.python_version())')
    "$ROOT/.venv/bin/python" -m pip download -q -d "$wheels" --only-binary=:all: --python-version "$tree_python" \
      -r requirements.txt -c requirements.lock
    # pip judges `python_full_version` markers by its own Python, not --python-version: fetch
    # every pin that has a marker, and let the tree's pip decide which ones it installs.
    marked=$(sed -n 's/ *;.*//p' requirements.lock)
    if [ -n "$marked" ]; then
      # shellcheck disable=SC2086
      "$ROOT/.venv/bin/python" -m pip download -q -d "$wheels" --only-binary=:all: --no-deps $marked
    fi
    touch "$wheels/.complete"
  fi
  mkdir -p "$work/tmp/wheels"
  cp "$wheels"/*.whl "$work/tmp/wheels/"
  cp requirements.txt requirements.lock "$work/tmp/"
  chroot "$work" /usr/bin/python3 -m venv /opt/venv
  chroot "$work" /usr/bin/env -i PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    /opt/venv/bin/pip install -q --no-index --find-links /tmp/wheels -r /tmp/requirements.txt -c /tmp/requirements.lock
  rm -rf "$work/tmp/wheels"
  chroot "$work" /usr/sbin/groupadd -g "$APP_UID" tutorial
  chroot "$work" /usr/sbin/useradd -u "$APP_UID" -g "$APP_UID" -d /var/lib/tutorial -M -s /usr/sbin/nologin tutorial
  # The packaged services' runtime folders, writable by that user (pods mount emptyDirs on the data ones).
  mkdir -p "$work/var/lib/tutorial" "$work/var/run/postgresql"
  chroot "$work" chown "$APP_UID:$APP_UID" /var/lib/tutorial /var/run/postgresql
  rm -f "$work/tmp/requirements.txt" "$work/tmp/requirements.lock"
  find "$work/opt/venv" -name __pycache__ -type d -prune -exec rm -rf {} +
  tar -C "$work" -c . | docker import \
    -c "ENV PATH=/opt/venv/bin:/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    -c "ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1" \
    - "$BASE" >/dev/null
  rm -rf "$work"
fi

# --- app ----------------------------------------------------------------------------------------
context=$(mktemp -d "$CACHE/context.XXXXXX")
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/app"
# What git would commit: tracked and new files, never ignored ones (data/, .venv/, node_modules/).
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  case "$f" in .venv|node_modules|static/vendor/*) continue ;; esac  # a worktree's links to shared ones
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -c | tar -C "$context/app" -x
sh scripts/vendor-assets.sh node_modules "$context/app/static/vendor"
# collectstatic with this machine's venv (the same pinned packages): hashed, compressed files.
(cd "$context/app" && DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only TUTORIAL_DATA_DIR="$context/data" \
  TUTORIAL_STATIC_ROOT="$context/app/staticfiles" TUTORIAL_LOCAL_CLUSTER=0 \
  "$ROOT/.venv/bin/python" manage.py collectstatic --noinput -v0)
rm -rf "$context/data"
find "$context/app" -name __pycache__ -type d -prune -exec rm -rf {} +
cat > "$context/Dockerfile" <<EOF
FROM $BASE
COPY app /app
WORKDIR /app
ENV DJANGO_SETTINGS_MODULE=tutorial.settings DJANGO_DEBUG=0 TUTORIAL_DATA_DIR=/var/lib/tutorial \\
    TUTORIAL_STATIC_ROOT=/app/staticfiles TUTORIAL_LOCAL_CLUSTER=0 HOME=/var/lib/tutorial
USER $APP_UID
EXPOSE 8000
CMD ["daphne", "--proxy-headers", "-b", "0.0.0.0", "-p", "8000", "tutorial.asgi:application"]
EOF
tag=$(tar -C "$context" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c . | sha256sum | cut -c1-12)
IMAGE="tutorial/site:$tag"
if ! docker image inspect "$PUSH_REGISTRY/$IMAGE" >/dev/null 2>&1; then
  log "app $IMAGE"
  docker build -q -t "$PUSH_REGISTRY/$IMAGE" "$context" >/dev/null
fi
docker push -q "$PUSH_REGISTRY/$IMAGE" >/dev/null
echo "$PULL_REGISTRY/$IMAGE"
