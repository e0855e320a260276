"""Shared by the benchmarks: a real site (daphne subprocess on its own SQLite) and signed-in users."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_run_processes() -> int:
    """How many server processes `make run` starts here: one per core (at most 4) with
    redis-server installed, otherwise one (scripts/serve.py decides; this asks it)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from serve import default_processes

    return default_processes() if shutil.which("redis-server") else 1


@contextlib.asynccontextmanager
async def running_site(processes: int = 1):
    """Yield (base_url, server_pid) of a fresh site; Django is set up in this process on the same DB.

    Served with DEBUG off, a secret key and collected static files, as scripts/run-site.sh serves
    it (DEBUG on records every SQL statement and costs each request more CPU than a class pays).
    ``processes`` > 1 serves it as ``make run`` does: scripts/serve.py, several daphne processes
    on one socket, and a private Redis (scripts/start-redis.sh) for the channel layer."""
    data_dir = Path(tempfile.mkdtemp(prefix="tutorial-bench-"))
    as_make_run(data_dir / "static")
    sys.path.insert(0, str(ROOT))
    from tests.daphne_process import private_redis, running_daphne

    redis = contextlib.ExitStack()
    if processes > 1:
        os.environ["REDIS_URL"] = redis.enter_context(private_redis(data_dir))
    os.environ.update({
        "TUTORIAL_DATA_DIR": str(data_dir),
        "TUTORIAL_SQLITE_PATH": str(data_dir / "db.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "tutorial.settings",
        "TUTORIAL_SANDBOXES_PER_USER": "50",
        # A benchmark is a whole class on one address (loopback): no per-address or per-learner rates.
        "TUTORIAL_SANDBOXES_PER_ADDRESS": "0",
        "TUTORIAL_RATE_SANDBOX_ACTIONS": "off",
        "TUTORIAL_RATE_CHECKS": "off",
        "TUTORIAL_RATE_LOGINS": "off",
        # Room for every sandbox a benchmark starts: past capacity, starts would queue.
        "TUTORIAL_SANDBOX_CAPACITY": os.environ.get("TUTORIAL_SANDBOX_CAPACITY", "200"),
        "TUTORIAL_LOG_LEVEL": "WARNING",
    })
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        with running_daphne(env, data_dir / "daphne.log", processes=processes) as server:
            yield server.url, server.pid
    finally:
        await _stop_all_sandboxes()
        await _remove_cluster_policies()
        redis.close()


def as_make_run(static_root: Path) -> None:
    """DEBUG off with collected static files and a secret key, as scripts/run-site.sh serves."""
    os.environ.update({
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TUTORIAL_STATIC_ROOT": str(static_root),
    })
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, check=True,
                   env={**os.environ, "DJANGO_SETTINGS_MODULE": "tutorial.settings"})


async def _stop_all_sandboxes() -> None:
    from sandbox import services
    from sandbox.models import Sandbox

    async for sandbox in Sandbox.objects.all():
        await services.stop_sandbox(sandbox)


async def _remove_cluster_policies() -> None:
    """A fresh data folder is a fresh install: once its pods are gone, its NetworkPolicies on the
    cluster go too, or every run would leave one behind in the shared namespaces."""
    from django.conf import settings

    from sandbox.backends.pod import PodBackend
    from sandbox.backends.toolboxes import PodToolboxes
    from sandbox.management.commands.remove_network_policies import remove_install_policies

    backends = [PodBackend()] if settings.PLAIN_BACKEND == "pod" else []
    backends += [PodToolboxes()] if settings.KUBERNETES_TOOLBOX == "pod" else []
    _, refused = await remove_install_policies(backends)
    for reason in refused:
        print(f"bench: {reason}", file=sys.stderr)


async def session_cookie(username: str) -> dict[str, str]:
    """A real Django session for a new user, as the browser would hold it."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(_session_cookie)(username)


def _session_cookie(username: str) -> dict[str, str]:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user = get_user_model().objects.create_user(username=username, password="bench-password-1")
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return {settings.SESSION_COOKIE_NAME: store.session_key}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def add_processes_option(parser) -> None:
    parser.add_argument("--processes", type=int, default=0,
                        help="daphne processes (0: as `make run` serves: one per core, at most 4, with redis-server)")


def run_and_print(main, options) -> None:
    """Run the benchmark's ``main(options)`` and print its figures (one line with ``--json``)."""
    import asyncio
    import json

    if getattr(options, "processes", None) == 0:
        options.processes = make_run_processes()
    figures = asyncio.run(main(options))
    print(json.dumps(figures) if options.json else json.dumps(figures, indent=2))


async def echo_times_ms(stream, count: int, *, pace_seconds: float = 0.0) -> list[float]:
    """Type ``count`` single keys into a raw console stream (``write``/``read``) and time each
    until its echo comes back, in milliseconds. Ends the line with ^U so the shell forgets it."""
    import asyncio
    import time

    times = []
    for i in range(count):
        char = "klmnopqrst"[i % 10].encode()
        started = time.perf_counter()
        await stream.write(char)
        seen = b""
        while char not in seen:
            chunk = await asyncio.wait_for(stream.read(), 10)
            if not chunk:
                raise RuntimeError("the console stream ended")
            seen += chunk
        times.append((time.perf_counter() - started) * 1000)
        if pace_seconds:
            await asyncio.sleep(max(0.0, pace_seconds - (time.perf_counter() - started)))
    await stream.write(b"\x15")
    return times
