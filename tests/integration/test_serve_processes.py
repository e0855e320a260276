"""``make run`` serves the site with several daphne processes on one port (scripts/serve.py) and a
private Redis (scripts/start-redis.sh) between them. What a class notices: the site answers with
both processes, a class connecting at once is shared between them (not piled on one while the
other idles), it keeps answering when one of them dies (it is started again), and without Redis
it still serves, with one process, and says why.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.daphne_process import private_redis, running_daphne

from .classroom_services import IN_CI, REPO


@contextlib.contextmanager
def _site_env(tmp_path: Path, *, redis: bool):
    env = {**os.environ, "TUTORIAL_SQLITE_PATH": str(tmp_path / "db.sqlite3"), "TUTORIAL_DATA_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "tutorial.settings"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    with contextlib.ExitStack() as stack:
        if redis:
            try:
                env["REDIS_URL"] = stack.enter_context(private_redis(tmp_path))
            except RuntimeError as exc:
                if IN_CI:
                    pytest.fail(str(exc))
                pytest.skip(f"{exc} (apt-get install redis-server)")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                       timeout=180, capture_output=True)
        yield env


def _daphnes(server_pid: int) -> list[psutil.Process]:
    return [child for child in psutil.Process(server_pid).children() if "daphne" in " ".join(child.cmdline())]


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


def test_two_processes_serve_and_one_that_dies_is_replaced_while_the_site_answers(tmp_path):
    with _site_env(tmp_path, redis=True) as env, \
            running_daphne(env, tmp_path / "serve.log", ready_path="/healthz", processes=2) as server:
        first = _daphnes(server.pid)
        assert len(first) == 2, (tmp_path / "serve.log").read_text()[-2000:]

        first[0].kill()  # SIGKILL: no chance to finish anything
        # Each process has a listening socket of its own (SO_REUSEPORT): connections the kernel had
        # already queued on the dying one's socket are reset with it (serve.py says why it keeps no
        # copy). Once its socket is closed, the kernel gives every new connection to the other.
        first[0].wait(timeout=10)
        answered = [_status(server.url + "/healthz") for _ in range(20)]
        assert answered == [200] * 20  # the other process took every request meanwhile

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = _daphnes(server.pid)
            if len(now) == 2 and first[0].pid not in {child.pid for child in now}:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"serve.py did not start a new process: {(tmp_path / 'serve.log').read_text()[-2000:]}")
        assert _status(server.url + "/healthz") == 200
        assert "exited with -9" in (tmp_path / "serve.log").read_text()


def _connections_held(daphne: psutil.Process, port: int) -> int:
    return sum(1 for connection in daphne.net_connections(kind="tcp")
               if connection.status == psutil.CONN_ESTABLISHED and connection.laddr and connection.laddr.port == port)


# 40 connections as a class's burst, opened three times: each round lands by the kernel's hash of
# the client's address and port, so a fair split of one round can still stray past 35/65 % by chance
# (about one in twenty); the worst of three rounds straying is luck no one should meet.
BURST = 40
ROUNDS = 3


def test_a_burst_of_connections_is_shared_between_the_processes(tmp_path):
    with _site_env(tmp_path, redis=True) as env, \
            running_daphne(env, tmp_path / "serve.log", ready_path="/healthz", processes=2) as server:
        daphnes = _daphnes(server.pid)
        assert len(daphnes) == 2, (tmp_path / "serve.log").read_text()[-2000:]
        port = int(server.url.rsplit(":", 1)[1])
        shares = []
        for _ in range(ROUNDS):
            # Connect them all first, as browsers of a class do within the same moment, then keep
            # each one alive with a request: a connection is counted where it was accepted.
            connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(BURST)]
            try:
                for connection in connections:
                    connection.connect()
                for connection in connections:
                    connection.request("GET", "/healthz")
                    response = connection.getresponse()
                    response.read()
                    assert response.status == 200
                held = [_connections_held(daphne, port) for daphne in daphnes]
            finally:
                for connection in connections:
                    connection.close()
            assert sum(held) == BURST, held
            shares.append(min(held) / BURST)
            if shares[-1] >= 0.35:
                break
        assert max(shares) >= 0.35, f"connections per process in each round: {shares} of {BURST}"


def test_without_redis_it_serves_with_one_process_and_says_why(tmp_path):
    with _site_env(tmp_path, redis=False) as env, \
            running_daphne(env, tmp_path / "serve.log", ready_path="/healthz", processes=2) as server:
        assert len(_daphnes(server.pid)) == 1
        assert _status(server.url + "/healthz") == 200
    assert "REDIS_URL is not set" in (tmp_path / "serve.log").read_text()


def test_a_port_already_taken_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, str(REPO / "scripts" / "serve.py"), "--port", str(port), "--processes", "1"],
                                cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
