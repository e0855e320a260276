"""A real daphne process keeps its request threads and their SQLite connections between requests,
and only as many as it may keep.

Django made a thread, a connection object and a connection (SQLite reading its schema again) for
every request; requests now borrow kept threads (tutorial/request_threads.py) whose connections
stay open (``CONN_MAX_AGE``). A thread over the number kept must end with its connection closed,
or each request of a burst would leave the file open until a garbage collection, and a busy
server would run out of file handles.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.daphne_process import running_daphne
from tutorial.request_threads import KEPT_THREADS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("connections")
    env = {**os.environ, "TUTORIAL_SQLITE_PATH": str(tmp / "db.sqlite3"), "TUTORIAL_DATA_DIR": str(tmp),
           "DJANGO_SETTINGS_MODULE": "tutorial.settings"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                   timeout=180, capture_output=True)
    with running_daphne(env, tmp / "daphne.log", ready_path="/healthz") as server:
        yield server, tmp / "db.sqlite3"


def open_connections(pid: int, database: Path) -> int:
    """Each SQLite connection holds the database file open once (and shares the log files)."""
    return sum(1 for f in psutil.Process(pid).open_files() if f.path == str(database))


def healthz(url: str) -> int:
    with urllib.request.urlopen(url + "/healthz", timeout=30) as answer:  # it queries the database
        return answer.status


def test_requests_one_after_another_reuse_one_thread_and_its_connection(site):
    server, database = site
    assert healthz(server.url) == 200
    process = psutil.Process(server.pid)
    threads, connections = process.num_threads(), open_connections(server.pid, database)
    for _ in range(150):
        assert healthz(server.url) == 200
    # A request gives its thread back after its answer is sent, so the next request may take a
    # second one: two threads, not one per request.
    assert open_connections(server.pid, database) <= connections + 1, process.open_files()
    assert process.num_threads() <= threads + 1


def test_bursts_keep_no_more_threads_than_they_may_and_no_file_handles_pile_up(site):
    server, database = site
    process = psutil.Process(server.pid)
    threads = process.num_threads()

    def burst():
        with ThreadPoolExecutor(40) as clients:
            assert list(clients.map(lambda _: healthz(server.url), range(40))) == [200] * 40

    # SQLite keeps a closed connection's file handle for the next one while others have the file
    # open, so the database's handles grow with the largest burst (40), not with each request (240).
    for _ in range(6):
        burst()
    deadline = time.monotonic() + 10  # the threads over the number kept end once their connections are closed
    while process.num_threads() > threads + KEPT_THREADS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.num_threads() <= threads + KEPT_THREADS
    assert open_connections(server.pid, database) <= 40 + 2, process.open_files()
