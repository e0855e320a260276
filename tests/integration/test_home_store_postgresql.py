"""Saved homes in PostgreSQL (``TUTORIAL_HOME_FILES_STORE=database``, as on a cluster): what one
replica saves, another puts back byte for byte, and a full home fits in the memory a site or
reaper pod is given.

Each replica is its own ``manage.py shell`` process with its own ``DATA_DIR`` on a fresh database,
served as the site is (DEBUG off), with the in-memory backend that keeps homes (so the bytes are
the store's, not tar's). Under CI a PostgreSQL that cannot be started is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from .classroom_services import REPO, postgres_database_url  # noqa: F401 - a fixture

FULL_HOME = 64 * 1024 * 1024  # the home's tmpfs cap
# The reaper pod (which checkpoints homes) is limited to 384 MiB and the site pod to 512 MiB
# (deploy/kubernetes/site): a save must not need many times the home on top of the process. Bound
# as a parameter, a save grew the process by about 3 homes (the archive read from the part file,
# psycopg's copy, libpq's send buffer); inlined into the SQL text as an escaped literal, by 9.
MOST_GROWTH = 4 * FULL_HOME

REPLICA = """
import asyncio, json, os, resource
from pathlib import Path
from sandbox import home_files
from sandbox.backends.base import SandboxSpec
from tests.fakes import HomeKeepingBackend

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

async def main():
    sandbox_id = os.environ["SANDBOX_ID"]
    backend = HomeKeepingBackend()
    ref = await backend.create(SandboxSpec(sandbox_id=sandbox_id, owner_id=1, owner_name="learner", lesson="first",
                                           workspace="plain", image="tutorial/base"))
    report = {}
    if os.environ["ACTION"] == "save":
        for name in os.environ["HOMES"].split(","):
            backend.sandboxes[sandbox_id].home = Path(name).read_bytes()
            before = peak()
            report[name] = await home_files.save(backend, sandbox_id, ref)
            report["growth"] = peak() - before
    else:
        before = peak()
        report["restored"] = await home_files.restore(backend, sandbox_id, ref)
        report["growth"] = peak() - before
        Path(os.environ["RESTORED"]).write_bytes(backend.sandboxes[sandbox_id].home)
    print(json.dumps(report))

asyncio.run(main())
"""


def _replica(database_url: str, data_dir, **env) -> dict:
    data_dir.mkdir()
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", REPLICA], cwd=REPO, capture_output=True, text=True, timeout=170,
        env={**os.environ, "DATABASE_URL": database_url, "TUTORIAL_DATA_DIR": str(data_dir),
             "TUTORIAL_HOME_FILES_STORE": "database", "DJANGO_DEBUG": "0",
             "DJANGO_SECRET_KEY": "test-only-" + "k" * 50, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _rows(database_url: str) -> list[tuple[str, bytes]]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return [(str(key), bytes(archive)) for key, archive in
                conn.execute("SELECT sandbox_id, archive FROM sandbox_savedhome", binary=True)]


@pytest.fixture
def database_url(postgres_database_url):
    return postgres_database_url


def test_a_full_home_saved_by_one_replica_comes_back_byte_for_byte_on_another(database_url, tmp_path):
    sandbox_id = str(uuid.uuid4())
    # Every byte value, quotes, backslashes and NULs first (what an escaped literal must get right),
    # then a full, incompressible home saved over it, as a checkpoint replaces the last copy.
    awkward = tmp_path / "awkward.bin"
    awkward.write_bytes(bytes(range(256)) * 64 + b"'\\x00\\\\''\x00" * 100)
    full = tmp_path / "full.bin"
    full.write_bytes(os.urandom(FULL_HOME))

    saved = _replica(database_url, tmp_path / "replica-a", SANDBOX_ID=sandbox_id, ACTION="save",
                     HOMES=f"{awkward},{full}")
    assert saved[str(full)] == FULL_HOME
    assert _rows(database_url) == [(sandbox_id, full.read_bytes())]  # one row, the last copy
    assert saved["growth"] < MOST_GROWTH, f"saving a full home grew the process by {saved['growth'] >> 20} MiB"

    restored_file = tmp_path / "restored.bin"
    restored = _replica(database_url, tmp_path / "replica-b", SANDBOX_ID=sandbox_id, ACTION="restore",
                        RESTORED=str(restored_file))
    assert restored["restored"] is True
    assert restored_file.read_bytes() == full.read_bytes()
    assert restored["growth"] < MOST_GROWTH, f"restoring a full home grew the process by {restored['growth'] >> 20} MiB"
    assert _rows(database_url) == []  # the running sandbox holds the files now


def test_the_awkward_bytes_alone_come_back_exactly(database_url, tmp_path):
    sandbox_id = str(uuid.uuid4())
    awkward = tmp_path / "awkward.bin"
    awkward.write_bytes(b"\x00" + bytes(range(256))[::-1] + b"\\'\"%s%b$1")
    _replica(database_url, tmp_path / "replica-a", SANDBOX_ID=sandbox_id, ACTION="save", HOMES=str(awkward))
    assert _rows(database_url) == [(sandbox_id, awkward.read_bytes())]
    restored_file = tmp_path / "restored.bin"
    _replica(database_url, tmp_path / "replica-b", SANDBOX_ID=sandbox_id, ACTION="restore",
             RESTORED=str(restored_file))
    assert restored_file.read_bytes() == awkward.read_bytes()
