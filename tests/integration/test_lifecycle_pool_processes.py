"""Warm-pool claims from several server processes at the same instant, on a shared SQLite file
and on PostgreSQL: every pooled sandbox goes to exactly one learner, and nobody gets two.

Each claimant is its own Python process (``manage.py shell``), released at the same wall-clock
moment, so the guarded UPDATEs of ``pool.claim`` really race in the database, as they do when a
class presses Start on a site served by more than one process. Only rows are involved: claiming
does not touch the engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import pytest

from .classroom_services import REPO, fresh_database, start_postgres_and_redis

CLAIMANTS = 6
POOLED = 4

SETUP = f"""
from django.contrib.auth import get_user_model
from sandbox.models import Sandbox
from sandbox.images.recipes import image_tag
for i in range({CLAIMANTS}):
    get_user_model().objects.create_user(username=f"claimant{{i}}")
for i in range({POOLED}):
    Sandbox.objects.create(lesson="warm-pool", workspace="plain", image=image_tag("base"),
                           state=Sandbox.State.POOLED, engine_ref=f"not-a-container-{{i}}")
"""

CLAIM = """
import json, os, time
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from sandbox import lifecycle, pool
from sandbox.images.recipes import image_tag
user = get_user_model().objects.get(username=os.environ["CLAIMANT"])
policy = lifecycle.policy_for("what-is-a-container")
tag = image_tag("base")
while time.time() < float(os.environ["RELEASE_AT"]):
    time.sleep(0.001)
with transaction.atomic():
    won = pool.claim(user, "what-is-a-container", tag, policy, timezone.now())
print(json.dumps({"user": user.username, "sandbox": str(won.id) if won else None}))
"""

CHECK = """
import json
from sandbox.models import Sandbox
print(json.dumps({str(s.id): s.owner.username if s.owner else None for s in Sandbox.objects.all()}))
"""


def _shell(env: dict, code: str, **extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO, env={**env, **extra},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(env: dict, code: str) -> str:
    proc = _shell(env, code)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


@contextlib.contextmanager
def _sqlite_env(tmp_path):
    env = {**os.environ, "TUTORIAL_SQLITE_PATH": str(tmp_path / "shared.sqlite3"), "TUTORIAL_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                   timeout=180, capture_output=True)
    yield env


@contextlib.contextmanager
def _postgres_env(tmp_path):
    services = start_postgres_and_redis()
    with fresh_database(services["DATABASE_URL"]) as url:
        yield {**os.environ, "DATABASE_URL": url, "TUTORIAL_DATA_DIR": str(tmp_path)}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_each_pooled_sandbox_goes_to_one_learner_across_processes(database, tmp_path):
    opened = _sqlite_env(tmp_path) if database == "sqlite" else _postgres_env(tmp_path)
    with opened as env:
        _run(env, SETUP)
        release_at = time.time() + 6  # every process has imported Django by then
        claimants = [_shell(env, CLAIM, CLAIMANT=f"claimant{i}", RELEASE_AT=str(release_at)) for i in range(CLAIMANTS)]
        results = []
        for proc in claimants:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        assert time.time() > release_at, "the processes did not wait for the common start"

        won = [r["sandbox"] for r in results if r["sandbox"]]
        assert len(won) == POOLED and len(set(won)) == POOLED, results  # all claimed, none twice
        owners = json.loads(_run(env, CHECK).strip().splitlines()[-1])
        assert sorted(owners) == sorted(won)
        for result in results:
            if result["sandbox"]:
                assert owners[result["sandbox"]] == result["user"], (result, owners)


HOLD_THE_WRITE_LOCK = """
import os, pathlib, time
from sandbox.capacity import write_transaction
from sandbox.models import Sandbox
marks = pathlib.Path(os.environ["MARKS"])
with write_transaction():
    Sandbox.objects.filter(pk=None).update(lesson="x")  # a write: SQLite's own lock is taken too
    (marks / "held").touch()
    time.sleep(3)
    (marks / "about-to-release").touch()
"""

TAKE_THE_WRITE_LOCK = """
import os, pathlib, time
from sandbox.capacity import write_transaction
marks = pathlib.Path(os.environ["MARKS"])
while not (marks / "held").exists():
    time.sleep(0.01)
with write_transaction():
    print("released first" if (marks / "about-to-release").exists() else "entered while held")
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_start_writers_of_different_processes_take_turns(database, tmp_path):
    """Start's write transaction (capacity and per-learner checks, then the claim) is queued across
    processes: a second server process enters only after the first has finished. On SQLite it
    waits on an flock beside the database (woken the moment it is free, not sleeping in SQLite's
    busy retry); on PostgreSQL on an advisory lock (without it both would read the same capacity)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    opened = _sqlite_env(tmp_path) if database == "sqlite" else _postgres_env(tmp_path)
    with opened as env:
        holder = _shell(env, HOLD_THE_WRITE_LOCK, MARKS=str(marks))
        taker = _shell(env, TAKE_THE_WRITE_LOCK, MARKS=str(marks))
        lock_file = tmp_path / "shared.sqlite3.writer-lock"
        queued_on_flock = False
        deadline = time.monotonic() + 60
        while database == "sqlite" and time.monotonic() < deadline and not (marks / "about-to-release").exists():
            if (marks / "held").exists() and _blocked_flock_on(lock_file, taker.pid):
                queued_on_flock = True
                break
            time.sleep(0.05)
        for proc in (holder, taker):
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        assert out.strip().splitlines()[-1] == "released first"
        if database == "sqlite":
            assert queued_on_flock, "the second process did not wait on the writer lock file"


def _blocked_flock_on(path, pid: int) -> bool:
    """Whether ``pid`` waits for an flock on ``path`` (/proc/locks marks waiters with ``->``)."""
    if not path.exists():
        return False
    inode = str(path.stat().st_ino)
    for line in open("/proc/locks"):
        fields = line.split()
        if "->" in fields and "FLOCK" in fields:
            rest = fields[fields.index("->") + 1:]
            if len(rest) >= 5 and rest[3] == str(pid) and rest[4].split(":")[-1] == inode:
                return True
    return False
