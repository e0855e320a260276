"""Debian-packaged PostgreSQL and Redis for the classroom (multi-process) tests.

``scripts/start-postgres-redis.sh`` starts them idempotently on loopback. Under CI a failure to
start them is a test failure, never a skip: CI installs the packages (.ci/run).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
IN_CI = bool(os.environ.get("CI"))


def start_postgres_and_redis() -> dict[str, str]:
    """Run the start script; return its DATABASE_URL and REDIS_URL (fail in CI, skip elsewhere)."""
    try:
        result = subprocess.run(
            [str(REPO / "scripts" / "start-postgres-redis.sh")],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        result, error = None, str(exc)
    else:
        error = result.stderr.strip()
    if result is None or result.returncode != 0:
        message = f"PostgreSQL and Redis could not be started by scripts/start-postgres-redis.sh: {error}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message + " (apt-get install postgresql redis-server)")
    found = dict(re.findall(r"^export (\w+)=(\S+)$", result.stdout, flags=re.M))
    return {"DATABASE_URL": found["DATABASE_URL"], "REDIS_URL": found["REDIS_URL"]}


@pytest.fixture
def postgres_database_url():
    """A fixture: a fresh, migrated PostgreSQL database for one test (PostgreSQL and Redis started
    as :func:`start_postgres_and_redis` does); its URL."""
    services = start_postgres_and_redis()
    with fresh_database(services["DATABASE_URL"]) as url:
        yield url


@contextlib.contextmanager
def fresh_database(database_url: str, *, migrate: bool = True):
    """A new, migrated PostgreSQL database for one test; dropped afterwards. Yields its URL."""
    import psycopg

    name = f"tutorial_test_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(database_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    url = urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        if migrate:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                cwd=REPO, env={**os.environ, "DATABASE_URL": url}, check=True, timeout=180,
                capture_output=True,
            )
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
