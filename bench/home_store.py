"""How long keeping a stopped sandbox's home takes in each store (TUTORIAL_HOME_FILES_STORE), and how
long the database store's one write holds the database: homes of 64 KiB, 8 MiB and 64 MiB (the
tmpfs cap) of incompressible bytes, through the in-memory backend (so the times are the store's,
not tar's), on a fresh SQLite database, or on the PostgreSQL database DATABASE_URL names (its
SavedHome rows are replaced). Served as the site is, with DEBUG off (DEBUG on records every
statement's SQL, which for a client-side-bound write is the whole archive as text). Prints JSON.

    .venv/bin/python bench/home_store.py
    DATABASE_URL=postgres://tutorial:tutorial@127.0.0.1:5432/tutorial .venv/bin/python bench/home_store.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"64KiB": 64 * 1024, "8MiB": 8 * 1024 * 1024, "64MiB": 64 * 1024 * 1024}
ROUNDS = 3


def setup_django() -> None:
    os.environ["TUTORIAL_DATA_DIR"] = tempfile.mkdtemp(prefix="tutorial-bench-homes-")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "k" * 50)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutorial.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


async def measure(store: str, size: int) -> dict:
    from django.conf import settings

    from sandbox import home_files
    from sandbox.backends.base import SandboxSpec
    from tests.fakes import HomeKeepingBackend

    settings.HOME_FILES_STORE = store
    sandbox_id = "be4c0000-0000-4000-8000-000000000001"
    backend = HomeKeepingBackend()
    ref = await backend.create(SandboxSpec(sandbox_id=sandbox_id, owner_id=1, owner_name="bench", lesson="bench",
                                           workspace="plain", image="tutorial/base"))
    home = os.urandom(size)
    saves, overwrites, restores, writes = [], [], [], []
    plain_write = home_files._write_row

    async def timed_write(*args, **kwargs):
        started = time.perf_counter()
        try:
            return await plain_write(*args, **kwargs)
        finally:
            writes.append(time.perf_counter() - started)

    home_files._write_row = timed_write
    try:
        for _ in range(ROUNDS):
            backend.sandboxes[sandbox_id].home = home
            started = time.perf_counter()
            await home_files.save(backend, sandbox_id, ref)
            saves.append(time.perf_counter() - started)
            started = time.perf_counter()
            await home_files.save(backend, sandbox_id, ref)  # a checkpoint over the last copy
            overwrites.append(time.perf_counter() - started)
            backend.sandboxes[sandbox_id].home = b""
            started = time.perf_counter()
            await home_files.restore(backend, sandbox_id, ref)
            restores.append(time.perf_counter() - started)
            assert backend.sandboxes[sandbox_id].home == home
    finally:
        home_files._write_row = plain_write
    result = {"save_ms_median": round(sorted(saves)[ROUNDS // 2] * 1000, 1),
              "save_over_a_copy_ms_median": round(sorted(overwrites)[ROUNDS // 2] * 1000, 1),
              "restore_ms_median": round(sorted(restores)[ROUNDS // 2] * 1000, 1)}
    if writes:
        result["database_write_ms_median"] = round(sorted(writes)[len(writes) // 2] * 1000, 1)
        result["database_write_ms_max"] = round(max(writes) * 1000, 1)
    return result


async def main() -> dict:
    results = {}
    for store in ("files", "database"):
        results[store] = {name: await measure(store, size) for name, size in SIZES.items()}
    from django.conf import settings
    from django.db import connection

    return {"rounds": ROUNDS, "database": connection.vendor, "debug": settings.DEBUG, "stores": results}


if __name__ == "__main__":
    setup_django()
    print(json.dumps(asyncio.run(main()), indent=2))
