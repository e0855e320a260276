# The site's image: Django + Channels served by daphne, static files collected and hashed.
# The same image runs the site, the Docker gateway and the reaper (docker-compose.yml).
#
#   docker build -t tutorial-site .
#
# Bases are build arguments so a mirror can be used; no registry is needed at run time.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# --- xterm.js and CodeMirror from npm (package-lock.json), as `make assets` does; never committed --
FROM ${NODE_IMAGE} AS assets
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts/vendor-assets.sh ./
RUN npm ci --no-audit --no-fund --loglevel=error \
 && ./vendor-assets.sh node_modules vendor

# --- the site ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# busybox-static, bash-static, jq, curl (with Debian's CA bundle) and the docker client (from docker.io): `manage.py build_images` copies them into
# the sandbox images, which are built offline from them. No engine runs in this image: it talks to
# the host's engine through the mounted socket.
RUN apt-get update \
 && apt-get install -y --no-install-recommends busybox-static bash-static jq curl ca-certificates docker.io \
 && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=tutorial.settings \
    TUTORIAL_DATA_DIR=/var/lib/tutorial \
    TUTORIAL_STATIC_ROOT=/app/staticfiles

WORKDIR /app
COPY requirements.txt requirements.lock ./
RUN pip install -r requirements.txt -c requirements.lock

COPY . .
COPY --from=assets /src/vendor/ static/vendor/

# Hashed, compressed static files, served by WhiteNoise from the ASGI app. collectstatic needs
# settings that load: a throwaway key and DEBUG off (so the manifest storage is used).
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only TUTORIAL_DATA_DIR=/tmp/build-data \
    python manage.py collectstatic --noinput -v0 \
 && rm -rf /tmp/build-data

ENV DJANGO_DEBUG=0
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# --proxy-headers: the client address comes from the reverse proxy's X-Forwarded-For.
CMD ["daphne", "--proxy-headers", "-b", "0.0.0.0", "-p", "8000", "tutorial.asgi:application"]
