"""One settings module for every deployment; the environment overrides the embedded defaults.

Embedded defaults (no variables set): SQLite under ``data/``, the in-memory channel layer and the
local Docker socket, so one machine serves a class with nothing else to start.
"""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sandbox.local_cluster import cluster_settings

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("TUTORIAL_DATA_DIR", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _secret_key(debug: bool) -> str:
    """SECRET_KEY from the environment; in development, a random key kept under DATA_DIR.

    With DEBUG off the key must come from ``DJANGO_SECRET_KEY`` (or the file named by
    ``DJANGO_SECRET_KEY_FILE``): every server process of a classroom must share one key, and a
    key generated on a container's disk would silently differ between processes and restarts.
    """
    key = os.environ.get("DJANGO_SECRET_KEY", "").strip()
    key_file = os.environ.get("DJANGO_SECRET_KEY_FILE", "").strip()
    if not key and key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"DJANGO_SECRET_KEY_FILE={key_file} cannot be read: {exc}") from exc
    if key:
        return key
    if not debug:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off. Generate one with "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'` and set it in .env "
            "(or set DJANGO_SECRET_KEY_FILE to a file holding it)."
        )
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = _secret_key(DEBUG)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# Websocket handshakes must come from the site itself (scheme, host of ALLOWED_HOSTS and port, as
# the browser connected) or from one of these exact origins: behind a reverse proxy that changes
# the scheme or the port, the public origin. Default: the CSRF-trusted origins (tutorial/origins.py).
WEBSOCKET_ALLOWED_ORIGINS = env_list("TUTORIAL_ALLOWED_ORIGINS", [o for o in CSRF_TRUSTED_ORIGINS if "*" not in o])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "accounts",
    "sandbox",
    "lessons",
    "classroom",
    "ops",
]

# Django's model backend, the user's row read with SQL made once; Django's own stays second for
# sessions made before (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.ModelBackend", "django.contrib.auth.backends.ModelBackend"]
# Django's database sessions, read with SQL made once (accounts/sessions.py).
SESSION_ENGINE = "accounts.sessions"

MIDDLEWARE = [
    # Django's own middleware (and django-csp's) with their hooks called on the event loop, not
    # through a worker thread each (tutorial/middleware.py): an async view runs without a hop.
    "tutorial.middleware.SecurityMiddleware",
    "tutorial.middleware.SessionMiddleware",
    "tutorial.middleware.LocaleMiddleware",
    "tutorial.middleware.CommonMiddleware",
    "tutorial.middleware.CsrfViewMiddleware",
    "tutorial.middleware.AuthenticationMiddleware",
    "tutorial.middleware.MessageMiddleware",
    "tutorial.middleware.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tutorial.middleware.CSPMiddleware",
    "tutorial.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "tutorial.urls"
ASGI_APPLICATION = "tutorial.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TUTORIAL_SQLITE_PATH", str(DATA_DIR / "db.sqlite3")),
        # Several processes (site, reaper) share the file: wait for a lock instead of failing.
        # WAL: readers (sessions, auth, pages) never wait for a writer and a commit is one
        # append without an fsync of the main file (synchronous=NORMAL is safe in WAL: a power
        # cut can lose the last commits, never corrupt the file). 30 simultaneous Starts spent
        # most of their time waiting on the rollback journal's locks.
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"},
        # Kept open between uses: opening the file costs about 0.3 ms of CPU (SQLite reads the
        # schema again on each new connection), and Channels closed an expired connection after
        # each database hop of a websocket consumer (every console connect made two or three).
        # Connections belong to threads: the consumers' one sync thread per process, and the
        # requests' kept threads (tutorial/request_threads.py), which close theirs when they end.
        "CONN_MAX_AGE": 300,
    }
}

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            # Its receive logs and retries a Redis error instead of ending the consumer (a console
            # would be closed with 1011).
            "BACKEND": "tutorial.channel_layers.ResilientRedisChannelLayer",
            "CONFIG": {"hosts": [{
                "address": os.environ["REDIS_URL"],
                # A consumer waits for events with BZPOPMIN, which Redis answers after 5 s
                # (channels_redis's brpop_timeout). redis-py 8 reads with a 5 s socket timeout by
                # default, so an idle wait timed out on the client first and killed every idle
                # console about every 5 s. Longer than the blocking read, yet finite: a Redis that
                # stopped answering is still noticed (and the receive tried again).
                "socket_timeout": 15,
                "socket_connect_timeout": 5,
            }]},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "lessons:catalogue"
LOGOUT_REDIRECT_URL = "lessons:catalogue"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TUTORIAL_LOG_LEVEL", "INFO")},
}

# --- Sandboxes -------------------------------------------------------------------------------
# One backend per workspace kind, loaded with import_string like Django's email backends.
# TUTORIAL_PLAIN_BACKEND=pod runs plain sandboxes as pods on the Kubernetes cluster (the same
# cluster settings as the kubernetes workspace below; in-cluster credentials when the site is a pod).
_PLAIN_BACKENDS = {"docker": "sandbox.backends.docker.DockerBackend", "pod": "sandbox.backends.pod.PodBackend"}
PLAIN_BACKEND = os.environ.get("TUTORIAL_PLAIN_BACKEND", "docker").strip().lower() or "docker"
if PLAIN_BACKEND not in _PLAIN_BACKENDS:
    raise ImproperlyConfigured(f"TUTORIAL_PLAIN_BACKEND must be 'docker' or 'pod', not {PLAIN_BACKEND!r}.")
SANDBOX_BACKENDS = {
    "plain": _PLAIN_BACKENDS[PLAIN_BACKEND],
    "docker": "sandbox.backends.docker.DockerBackend",
    "kubernetes": "sandbox.backends.kubernetes.KubernetesBackend",
}
DOCKER_HOST = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
# Whether this site drives a Docker engine. The site on a cluster (deploy/kubernetes) has none:
# plain sandboxes are pods there, and Docker lessons, which need a learner's engine and the
# gateway beside it, are offered on Docker hosts only (the catalogue says so; docs/scaling.md).
DOCKER_ENGINE = env_bool("TUTORIAL_DOCKER_ENGINE", True)
# Image tags are namespaced so `build_images` and the reaper only touch the project's own.
SANDBOX_IMAGE_PREFIX = os.environ.get("TUTORIAL_IMAGE_PREFIX", "tutorial")
# Build argument for the sandbox base: "scratch" bootstraps from the host's busybox-static;
# a machine with a registry may use e.g. "busybox:1.36".
SANDBOX_BASE_IMAGE = os.environ.get("TUTORIAL_SANDBOX_BASE", "scratch")
SANDBOX_LIMITS = {
    "memory_bytes": int(os.environ.get("TUTORIAL_SANDBOX_MEMORY", 512 * 1024 * 1024)),
    "nano_cpus": int(os.environ.get("TUTORIAL_SANDBOX_NANO_CPUS", 1_000_000_000)),
    "pids": int(os.environ.get("TUTORIAL_SANDBOX_PIDS", 256)),
    "nofile": 1024,
    "tmpfs_home_bytes": 64 * 1024 * 1024,
    "tmpfs_tmp_bytes": 64 * 1024 * 1024,
    "log_max_bytes": 512 * 1024,
}
SANDBOXES_PER_USER = int(os.environ.get("TUTORIAL_SANDBOXES_PER_USER", 2))
CONSOLES_PER_USER = int(os.environ.get("TUTORIAL_CONSOLES_PER_USER", 8))
# Live dashboards one instructor may hold open at once, counted across processes like consoles.
DASHBOARDS_PER_USER = int(os.environ.get("TUTORIAL_DASHBOARDS_PER_USER", 8))
# Tiles on one page of the instructor's watch grid. Each tile is a console, counted against
# CONSOLES_PER_USER like any other: the page never shows more tiles than that limit allows.
WATCH_GRID_TILES = int(os.environ.get("TUTORIAL_WATCH_GRID_TILES", 6))
CHECK_TIMEOUT_SECONDS = int(os.environ.get("TUTORIAL_CHECK_TIMEOUT", 20))

# --- Self-hosting: production settings from the environment ----------------------------------
# Every variable below is optional: unset, the embedded defaults above stay as they are
# (SQLite, the in-memory channel layer, DEBUG on). `.env.example` documents each one.
if "*" in ALLOWED_HOSTS:
    # The websocket origin check uses ALLOWED_HOSTS: a wildcard would accept any site's pages.
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name the site's hosts; '*' is not allowed.")

if os.environ.get("DATABASE_URL"):
    import dj_database_url

    try:
        DATABASES = {
            "default": dj_database_url.parse(
                os.environ["DATABASE_URL"],
                # Under ASGI each request may run in another thread: persistent connections are
                # off by default; health checks make a reused one safe after a database restart.
                conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", 0)),
                conn_health_checks=True,
            )
        }
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"DATABASE_URL is not a database URL ({exc}); e.g. postgres://user:password@host:5432/name"
        ) from exc

# TLS ends at a reverse proxy: trust its X-Forwarded-Proto so Django knows the request was https,
# and send cookies only over https. Only turn this on when the proxy sets (and overwrites) it.
BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", BEHIND_TLS_PROXY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # container health checks speak plain http inside
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", 0))

# Static files: WhiteNoise's file table serves STATIC_ROOT from the ASGI app itself, in front of
# Django (tutorial/static_files.py; not in MIDDLEWARE, whose sync hop every request would pay). With DEBUG
# off, names carry a content hash and gzip/brotli copies are made by `collectstatic`, so browsers
# may cache them for ever. The site's Dockerfile runs collectstatic into TUTORIAL_STATIC_ROOT.
STATIC_ROOT = Path(os.environ.get("TUTORIAL_STATIC_ROOT") or DATA_DIR / "staticfiles")
# Hashed names: on with DEBUG off unless TUTORIAL_STATIC_MANIFEST says otherwise (empty = unset).
STATIC_MANIFEST = env_bool("TUTORIAL_STATIC_MANIFEST", False) if os.environ.get("TUTORIAL_STATIC_MANIFEST", "").strip() else not DEBUG
if STATIC_MANIFEST:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "tutorial.static_storage.StaticFilesStorage"},
    }

# Structured logs: one JSON object per line for a log collector (TUTORIAL_LOG_FORMAT=json).
LOG_FORMAT = os.environ.get("TUTORIAL_LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {"()": "tutorial.jsonlog.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
elif LOG_FORMAT != "plain":
    raise ImproperlyConfigured(f"TUTORIAL_LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}.")

# The classroom registry as the site reaches it, for the doctor (default: http://TUTORIAL_REGISTRY,
# the engine's view of it). Under compose the site reaches it as http://registry:5000.
TUTORIAL_REGISTRY_URL = os.environ.get("TUTORIAL_REGISTRY_URL", "")
# The doctor warns when the disk holding DATA_DIR or the engine's data has less than this free.
DOCTOR_MIN_FREE_BYTES = int(os.environ.get("TUTORIAL_DOCTOR_MIN_FREE_GB", 5)) * 1024**3

# --- Kubernetes workspace -----------------------------------------------------------------------
# The cluster: a kubeconfig file (default: $KUBECONFIG, else ~/.kube/config) and a context in it
# (default: its current context). The server's account there must be able to make namespaces and
# the objects in sandbox/backends/k8s_manifests.py (on kind, the admin kubeconfig is enough).
# With none of those, the local cluster this machine builds and runs (cluster/, `python -m
# cluster up`, started by `make run`); TUTORIAL_LOCAL_CLUSTER=0 turns that off.
_LOCAL_CLUSTER = cluster_settings()
KUBERNETES_LOCAL_CLUSTER = bool(_LOCAL_CLUSTER)
KUBERNETES_KUBECONFIG = _LOCAL_CLUSTER.get("KUBERNETES_KUBECONFIG", os.environ.get("TUTORIAL_KUBECONFIG", ""))
KUBERNETES_CONTEXT = _LOCAL_CLUSTER.get("KUBERNETES_CONTEXT", os.environ.get("TUTORIAL_K8S_CONTEXT", ""))
# The API address as the toolbox containers reach it; on one machine with kind that is the
# address `kind get kubeconfig --internal` prints (e.g. https://kind-control-plane:6443).
KUBERNETES_API_INTERNAL_SERVER = _LOCAL_CLUSTER.get("KUBERNETES_API_INTERNAL_SERVER", os.environ.get("TUTORIAL_K8S_API_INTERNAL_SERVER", ""))
# The Docker network the toolbox joins to reach that address ("kind" is kind's own network).
KUBERNETES_TOOLBOX_NETWORK = _LOCAL_CLUSTER.get("KUBERNETES_TOOLBOX_NETWORK", os.environ.get("TUTORIAL_K8S_TOOLBOX_NETWORK", "kind"))
KUBERNETES_NAMESPACE_PREFIX = os.environ.get("TUTORIAL_K8S_NAMESPACE_PREFIX", "tutorial-")
# Where plain sandbox pods run (TUTORIAL_PLAIN_BACKEND=pod): one namespace of the install.
SANDBOX_POD_NAMESPACE = os.environ.get("TUTORIAL_SANDBOX_NAMESPACE", "tutorial-sandboxes")
# Where a Kubernetes lesson's console (the toolbox with kubectl) runs: "docker", a container on
# the Docker engine (the default on a Docker host), or "pod", a pod in the install's tools namespace
# (the site on a cluster, deploy/kubernetes: no Docker engine needed; docs/kubernetes.md).
KUBERNETES_TOOLBOX = os.environ.get("TUTORIAL_KUBERNETES_TOOLBOX", "docker").strip().lower() or "docker"
if KUBERNETES_TOOLBOX not in ("docker", "pod"):
    raise ImproperlyConfigured(f"TUTORIAL_KUBERNETES_TOOLBOX must be 'docker' or 'pod', not {KUBERNETES_TOOLBOX!r}.")
KUBERNETES_TOOLS_NAMESPACE = os.environ.get("TUTORIAL_TOOLS_NAMESPACE", "tutorial-tools")
# The API address as toolbox pods reach it (default: the server's own, which in a pod is the
# `kubernetes` Service's address). An IP literal: the toolboxes have no DNS.
KUBERNETES_TOOLBOX_API_SERVER = os.environ.get("TUTORIAL_K8S_TOOLBOX_API_SERVER", "")
# Pod Security `restricted` is pinned to this version (enforce, warn and audit).
KUBERNETES_POD_SECURITY_VERSION = os.environ.get("TUTORIAL_K8S_POD_SECURITY_VERSION", "v1.31")
# Lifetime of the learner's ServiceAccount token in the toolbox (at least 600 seconds).
KUBERNETES_TOKEN_SECONDS = int(os.environ.get("TUTORIAL_K8S_TOKEN_SECONDS", 4 * 3600))
# How long `create` waits for a namespace of the same sandbox that is still terminating.
KUBERNETES_NAMESPACE_WAIT_SECONDS = int(os.environ.get("TUTORIAL_K8S_NAMESPACE_WAIT", 90))
# Lesson manifests name images as $REGISTRY/...: the classroom registry as the nodes reach it.
KUBERNETES_LESSON_REGISTRY = os.environ.get("TUTORIAL_K8S_LESSON_REGISTRY", "localhost:5000")
# Per-namespace quota and container limits (None: the defaults in k8s_manifests). NodePort and
# LoadBalancer services are always 0, whatever is set here.
KUBERNETES_QUOTA = {
    "pods": os.environ.get("TUTORIAL_K8S_QUOTA_PODS", "20"),
    "requests.cpu": "2",
    "requests.memory": "2Gi",
    "limits.cpu": "4",
    "limits.memory": "4Gi",
    "requests.storage": "1Gi",
    "persistentvolumeclaims": "2",
    "services": "10",
    "configmaps": "20",
    "secrets": "20",
}
KUBERNETES_LIMIT_RANGE = None

# --- Lesson engine ---------------------------------------------------------------------------
# More folders of lessons (each holding lesson folders), beside lessons/content: an instructor
# adds lessons without touching code. Colon-separated paths in TUTORIAL_LESSON_DIRS.
LESSON_DIRS = [p for p in os.environ.get("TUTORIAL_LESSON_DIRS", "").split(os.pathsep) if p.strip()]
# Images lessons may name besides the project's build recipes (sandbox.images.recipes.RECIPES).
LESSON_EXTRA_IMAGES = env_list("TUTORIAL_LESSON_EXTRA_IMAGES", [])
# Scenario zips instructors upload (/classrooms/import/): the zip's size (that path takes request
# bodies this big, see REQUEST_BODY_MAX_BYTES_BY_PATH), and what it may unpack to: bytes in all and members (a zip bomb is refused before it is written).
SCENARIO_UPLOAD_MAX_BYTES = int(os.environ.get("TUTORIAL_SCENARIO_UPLOAD_MAX", 5 * 1024 * 1024))
SCENARIO_UPLOAD_MAX_UNPACKED_BYTES = int(os.environ.get("TUTORIAL_SCENARIO_UPLOAD_MAX_UNPACKED", 20 * 1024 * 1024))
SCENARIO_UPLOAD_MAX_FILES = int(os.environ.get("TUTORIAL_SCENARIO_UPLOAD_MAX_FILES", 500))

# --- Docker workspace gateway and classroom registry (sandbox/gateway) ---------------------------
# The registry learners pull from and push to (only their own namespace); loopback, no auth.
GATEWAY_REGISTRY = os.environ.get("TUTORIAL_REGISTRY", "127.0.0.1:5000")
# Where scripts/start-registry.sh keeps the registry's storage (not DATA_DIR: tests move that).
GATEWAY_REGISTRY_DIR = Path(os.environ.get("TUTORIAL_REGISTRY_DIR", BASE_DIR / "data" / "registry"))
# Caps for what a learner makes through the gateway (fields of sandbox.gateway.policy.Limits).
GATEWAY_LIMITS = {
    "containers_max": int(os.environ.get("TUTORIAL_GATEWAY_CONTAINERS", 10)),
    "images_max": int(os.environ.get("TUTORIAL_GATEWAY_IMAGES", 10)),
    "memory_max": int(os.environ.get("TUTORIAL_GATEWAY_MEMORY_MAX", 512 * 1024 * 1024)),
    # Each published port is a docker-proxy process on the host, outside every learner's limits.
    "ports_per_container_max": int(os.environ.get("TUTORIAL_GATEWAY_PORTS_PER_CONTAINER", 10)),
    "ports_per_learner_max": int(os.environ.get("TUTORIAL_GATEWAY_PORTS_PER_LEARNER", 20)),
    # Each healthcheck probe is an exec run by the engine: at most one per this many seconds.
    "health_interval_min": float(os.environ.get("TUTORIAL_GATEWAY_HEALTH_INTERVAL_MIN", 1.0)),
    # Address range for learners' own bridge networks (one /26 each); pick one your LAN does not use.
    "network_pool": os.environ.get("TUTORIAL_GATEWAY_NETWORK_POOL", "10.213.0.0/16"),
}
# What one sandbox's gateway socket may hold (fields of sandbox.gateway.proxy.ConnectionLimits):
# seconds for a request's head once it has begun, seconds idle between requests, open connections.
GATEWAY_CONNECTIONS = {
    "head_timeout": float(os.environ.get("TUTORIAL_GATEWAY_HEAD_TIMEOUT", 30)),
    "idle_timeout": float(os.environ.get("TUTORIAL_GATEWAY_IDLE_TIMEOUT", 300)),
    # Seconds an upload body (docker cp in, a build context) may go without a byte.
    "stall_timeout": float(os.environ.get("TUTORIAL_GATEWAY_STALL_TIMEOUT", 60)),
    "connections_max": int(os.environ.get("TUTORIAL_GATEWAY_CONNECTIONS", 32)),
}

# --- Classrooms ---------------------------------------------------------------------------------
# A learner with no console input, check or progress for this long shows as idle on the dashboard.
CLASSROOM_IDLE_SECONDS = int(os.environ.get("TUTORIAL_CLASSROOM_IDLE_SECONDS", 300))
# The most an instructor may add to the class's sandbox time in one go.
CLASSROOM_MAX_EXTEND_SECONDS = int(os.environ.get("TUTORIAL_CLASSROOM_MAX_EXTEND_SECONDS", 4 * 3600))
# Insights flag "the class is stuck here" only on a step at least this many learners opened, where
# a learner has spent this many minutes without passing it or failed this many checks on it.
CLASSROOM_STUCK_MIN_LEARNERS = int(os.environ.get("TUTORIAL_CLASSROOM_STUCK_MIN_LEARNERS", 3))
CLASSROOM_STUCK_MINUTES = int(os.environ.get("TUTORIAL_CLASSROOM_STUCK_MINUTES", 10))
CLASSROOM_STUCK_FAILURES = int(os.environ.get("TUTORIAL_CLASSROOM_STUCK_FAILURES", 3))

# --- Sandbox lifecycle: limits, idle culling, capacity queue, warm pool, reaper ----------------
import json as _json  # noqa: E402  (kept inside this section)

# Sandboxes running (or starting) at once on this engine; past it, starts wait in a queue.
SANDBOX_CAPACITY = int(os.environ.get("TUTORIAL_SANDBOX_CAPACITY", 30))
# Time to live from a sandbox's first start (a two-hour lesson with room to spare); at the end it
# stops and its saved files are dropped. Learner progress is kept in the database regardless.
SANDBOX_TTL_SECONDS = int(os.environ.get("TUTORIAL_SANDBOX_TTL", 3 * 3600))
# No console input, check or gateway call for this long stops the sandbox (its files are kept).
SANDBOX_IDLE_SECONDS = int(os.environ.get("TUTORIAL_SANDBOX_IDLE", 30 * 60))
# The learner is warned this long before either end.
SANDBOX_WARN_SECONDS = int(os.environ.get("TUTORIAL_SANDBOX_WARN", 5 * 60))
# "Extend" adds this much time to live, at most this many times (0: no extend button).
SANDBOX_EXTEND_SECONDS = int(os.environ.get("TUTORIAL_SANDBOX_EXTEND", 30 * 60))
SANDBOX_MAX_EXTENSIONS = int(os.environ.get("TUTORIAL_SANDBOX_MAX_EXTENSIONS", 2))
# The web preview forwards to the machine's 127.0.0.1, where learners publish their ports: off when
# the site runs in a container of its own (docker-compose).
WEB_PREVIEW = env_bool("TUTORIAL_WEB_PREVIEW", True)
# A web preview link (sandbox/preview.py) works this long; the pane makes a fresh one on each listing.
PREVIEW_LINK_SECONDS = int(os.environ.get("TUTORIAL_PREVIEW_LINK_SECONDS", 8 * 3600))
# A sandbox still "starting" after this long (its server died mid-create) is failed and cleaned up.
SANDBOX_START_TIMEOUT_SECONDS = int(os.environ.get("TUTORIAL_SANDBOX_START_TIMEOUT", 120))
# Per-lesson overrides of the four limits above, as JSON: {"slug": {"ttl": s, "idle": s,
# "extend": s, "max_extensions": n}}.
SANDBOX_LESSON_LIMITS = _json.loads(os.environ.get("TUTORIAL_SANDBOX_LESSON_LIMITS", "{}") or "{}")
# Warm pool: pre-created sandboxes per image, e.g. "base=30,lesson-hello=5" (plain workspaces).
SANDBOX_WARM_POOL = {
    name.strip(): int(count)
    for name, _, count in (item.partition("=") for item in env_list("TUTORIAL_WARM_POOL", []))
    if name.strip() and count.strip()
}
# While a class works (a learner started, typed or checked in the last 90 s), the pool makes at
# most one sandbox at a time, one every this many seconds (0: as fast as when idle): creating a
# container is CPU on the engine that the class's echoes and Checks wait behind (sandbox.pool).
SANDBOX_WARM_POOL_BUSY_SPACING_SECONDS = float(os.environ.get("TUTORIAL_WARM_POOL_BUSY_SPACING", 5))
# How often `reap_sandboxes --loop` applies the limits, promotes the queue and refills the pool.
SANDBOX_REAPER_INTERVAL_SECONDS = float(os.environ.get("TUTORIAL_REAPER_INTERVAL", 5))
# While a learner is active, the reaper copies their sandbox's home this often (0: never), so an
# `exit` or an engine restart (no chance to save at stop) loses at most this much work.
SANDBOX_HOME_CHECKPOINT_SECONDS = int(os.environ.get("TUTORIAL_HOME_CHECKPOINT", 120))
# Where a stopped sandbox's home archive is kept (sandbox.home_files): "files" under DATA_DIR/homes
# (every process on one machine shares DATA_DIR), or "database" (one row per sandbox), which every
# site replica and the reaper see when each has its own DATA_DIR, as on a cluster.
HOME_FILES_STORE = os.environ.get("TUTORIAL_HOME_FILES_STORE", "files").strip().lower() or "files"
if HOME_FILES_STORE not in ("files", "database"):
    raise ImproperlyConfigured(f"TUTORIAL_HOME_FILES_STORE must be 'files' or 'database', not {HOME_FILES_STORE!r}.")

# Which install made an engine object (its `tutorial.install` label): the reaper, cleanup and the
# gateway touch only their own install's containers, networks and volumes, so two sites can share
# one Docker engine. Unset, it is read from DATA_DIR/install_id, which is first written with an id
# derived from this site's database (every process of one site agrees; two sites with their own
# databases differ). Objects from before this label are treated as this install's only when its
# database has a row of their sandbox (sandbox.backends.base.belongs_to_install).
_INSTALL_ID_FORMAT = r"[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?"  # also a valid Kubernetes label value


def _install_id() -> str:
    import hashlib
    import re

    configured = os.environ.get("TUTORIAL_INSTALL_ID", "").strip()
    if configured:
        if not re.fullmatch(_INSTALL_ID_FORMAT, configured):
            raise ImproperlyConfigured(f"TUTORIAL_INSTALL_ID={configured!r}: use 1-63 of a-z, 0-9, '-', '_', '.', "
                                       "starting and ending with a letter or digit (e.g. classroom-1).")
        return configured
    path = DATA_DIR / "install_id"
    try:
        kept = path.read_text().strip()
        if re.fullmatch(_INSTALL_ID_FORMAT, kept):
            return kept
    except OSError:
        pass
    database = DATABASES["default"]
    name = str(database.get("NAME") or "")
    if database["ENGINE"].endswith("sqlite3") and name and name != ":memory:":
        name = str(Path(name).resolve())
    identity = "|".join([database["ENGINE"], str(database.get("HOST") or ""), str(database.get("PORT") or ""), name])
    derived = "i" + hashlib.sha256(identity.encode()).hexdigest()[:12]
    try:  # kept, so moving the database later does not orphan this install's sandboxes
        partial = path.with_name(f".install_id.{os.getpid()}")
        partial.write_text(derived + "\n")
        os.replace(partial, path)
    except OSError:
        pass
    return derived


INSTALL_ID = _install_id()

# --- Abuse limits and the hardened web side -----------------------------------------------------
# Rates are "<count>/<period>" with period s, m, h or d (e.g. "10/h"); "0" or "off" turns one off.
# Counters live in Django's cache so they hold across server processes: `make run` (REDIS_URL on
# the private Redis) shares one Redis cache, otherwise each process has its own memory cache.
# Per-address limits count a client's address (an IPv6 client's /64): a class behind one NAT
# shares one address, so raise them to the class size there.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tutorial"}}
if os.environ.get("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": os.environ["REDIS_URL"], "KEY_PREFIX": "tutorial"}}
# A cache that does not answer lets requests through rather than refusing a whole class.
RATELIMIT_FAIL_OPEN = True
# Anyone may continue as a guest (a real user row without a password); "off" requires an account.
GUESTS_ENABLED = env_bool("TUTORIAL_GUESTS", True)
RATE_GUESTS_PER_ADDRESS = os.environ.get("TUTORIAL_RATE_GUESTS", "10/h")
RATE_SIGNUPS_PER_ADDRESS = os.environ.get("TUTORIAL_RATE_SIGNUPS", "10/h")
# Log-in: this many failures for one username from one address lock it (for that address) for
# LOGIN_LOCKOUT_SECONDS, doubling with every further failure up to a day; plus a cap on log-in
# attempts per address whatever the username (password spraying).
LOGIN_FAILURES_BEFORE_LOCKOUT = int(os.environ.get("TUTORIAL_LOGIN_FAILURES", 5))
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("TUTORIAL_LOGIN_LOCKOUT", 60))
RATE_LOGINS_PER_ADDRESS = os.environ.get("TUTORIAL_RATE_LOGINS", "30/m")
RATE_JOINS_PER_ADDRESS = os.environ.get("TUTORIAL_RATE_JOINS", "20/h")
# Per learner: Start, Stop, Restart and Reset together; checks.
RATE_SANDBOX_ACTIONS = os.environ.get("TUTORIAL_RATE_SANDBOX_ACTIONS", "20/m")
RATE_CHECKS = os.environ.get("TUTORIAL_RATE_CHECKS", "30/m")
# The editor tab: listing, opening and saving files together (a save of a big file is several execs).
RATE_EDITOR_ACTIONS = os.environ.get("TUTORIAL_RATE_EDITOR_ACTIONS", "60/m")
# Sandboxes held (queued, starting, running) by everyone starting from one client address.
SANDBOXES_PER_ADDRESS = int(os.environ.get("TUTORIAL_SANDBOXES_PER_ADDRESS", 6))
# Behind a reverse proxy, the header holding the client's address (its last entry is used: the
# one the proxy added), e.g. X-Forwarded-For. Empty: the connection's address.
CLIENT_ADDRESS_HEADER = os.environ.get("TUTORIAL_CLIENT_ADDRESS_HEADER", "")
# Guests (`manage.py remove_old_guests`, run by `make run` at start): a guest not seen for this
# long (their session has ended, so nobody can sign in as them) is removed when they hold no
# sandbox and are in no classroom; one that never did anything goes after GUEST_UNUSED_SECONDS.
GUEST_MAX_AGE_SECONDS = int(os.environ.get("TUTORIAL_GUEST_MAX_AGE", 14 * 24 * 3600))
GUEST_UNUSED_SECONDS = int(os.environ.get("TUTORIAL_GUEST_UNUSED_MAX_AGE", 24 * 3600))
# Request bodies larger than this are refused with 413 before they are buffered (the server's own
# guard, tutorial/body_limit.py); Django's own form limit matches it.
REQUEST_BODY_MAX_BYTES = int(os.environ.get("TUTORIAL_REQUEST_BODY_MAX", 1024 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
# Paths that take bigger bodies: the instructors' scenario upload (the zip, and the form around it).
REQUEST_BODY_MAX_BYTES_BY_PATH = {"/classrooms/import/": max(REQUEST_BODY_MAX_BYTES, SCENARIO_UPLOAD_MAX_BYTES + 256 * 1024)}
# A client must deliver a request's line, headers and body within this many seconds of starting it.
REQUEST_HEADER_TIMEOUT_SECONDS = int(os.environ.get("TUTORIAL_REQUEST_TIMEOUT", 20))
# Content-Security-Policy (django-csp): scripts and styles from the site only (xterm.js and htmx
# are served from static/), websockets to the site itself; xterm.js and htmx set inline styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        # The one inline handler (the language menu's onchange="this.form.submit()"), by its hash.
        "script-src": ["'self'", "'unsafe-hashes'", "'sha256-osjxnKEPL/pQJbFk1dKsF7PYFmTyMWGmVSiL9inhxJY='"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
PERMISSIONS_POLICY = ("camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
                      "clipboard-read=(self), clipboard-write=(self)")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
