"""The abuse limits hold across the server processes ``make run`` starts: with two daphne processes
on one port and the private Redis, a script making guests over fresh connections (the kernel
hands them to either process) gets no more than the limit. With a cache per process it got the
limit once per process."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daphne_process import private_redis, running_daphne

REPO = Path(__file__).resolve().parents[2]
IN_CI = bool(os.environ.get("CI"))


def _make_guest(base: str) -> int:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    conn.request("GET", "/accounts/login/")
    page = conn.getresponse()
    body = page.read().decode()
    cookie = page.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    conn.close()
    conn = http.client.HTTPConnection(host, int(port), timeout=20)  # a new connection: maybe the other process
    conn.request("POST", "/accounts/guest/", body=f"csrfmiddlewaretoken={token}&next=/",
                 headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded",
                          "Referer": base + "/accounts/login/"})
    status = conn.getresponse().status
    conn.close()
    return status


def test_guest_limit_holds_across_two_server_processes(tmp_path):
    env = {**os.environ, "TUTORIAL_SQLITE_PATH": str(tmp_path / "db.sqlite3"), "TUTORIAL_DATA_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "tutorial.settings", "TUTORIAL_RATE_GUESTS": "6/h"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    try:
        redis = private_redis(tmp_path)
        env["REDIS_URL"] = redis.__enter__()
    except RuntimeError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(f"{exc} (apt-get install redis-server)")
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                       timeout=180, capture_output=True)
        with running_daphne(env, tmp_path / "serve.log", ready_path="/healthz", processes=2) as server:
            answers = [_make_guest(server.url) for _ in range(14)]
    finally:
        redis.__exit__(None, None, None)
    assert answers.count(302) == 6, answers
    assert answers[6:] == [429] * 8
