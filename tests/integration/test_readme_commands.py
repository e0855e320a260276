"""The README's first command on a clean clone: `make run` sets everything up and serves the site.

A newcomer types `make run` in a fresh checkout and expects a working site, with sandboxes, not a
message to go and read the README's prose. This clones what is committed (so a file that exists only
in the developer's tree fails here), runs `make run` on a free port, and uses the site: the catalogue
answers, a lesson page offers a sandbox (no "engine" or "not installed" error), and the command stops
cleanly on SIGTERM, taking its server processes with it.

The clone shares this machine's engine and registry with the rest of the suite: its registry folder
is the one the suite uses (start-registry.sh would otherwise restart the registry for its own
folder), and its reaper and gateway see only their own install's objects.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import signal
import subprocess
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.daphne_process import ROOT, free_port

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]

READY_WITHIN = 600  # a fresh .venv, npm ci, migrations and the sandbox images


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read().decode("utf-8", errors="replace")


def _processes_under(folder: Path) -> list[int]:
    """Pids whose command line runs from ``folder`` (the clone's .venv or scripts)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in command and "redis-server" not in command:
            found.append(int(entry.name))
    return found


def test_make_run_on_a_clean_clone_serves_lessons_with_sandboxes(tmp_path, docker_client):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TUTORIAL_", "DJANGO_", "REDIS_URL", "DATABASE_URL", "PYTEST"))}
    env.update(PORT=str(port), HOST="127.0.0.1",
               TUTORIAL_REGISTRY_DIR=os.environ.get("TUTORIAL_REGISTRY_DIR", str(ROOT / "data" / "registry")))
    log_path = tmp_path / "make-run.log"
    with log_path.open("wb") as log:
        make = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    sandbox_id = None
    try:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            assert make.poll() is None, f"make run exited with {make.returncode}:\n{log_path.read_text()[-4000:]}"
            try:
                status, _ = _get(base + "/")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"make run did not serve within {READY_WITHIN} s:\n" \
                                                f"{log_path.read_text()[-4000:]}"
            time.sleep(1)

        status, catalogue = _get(base + "/")
        assert status == 200
        # As a newcomer does: open a lesson, continue as a guest, start the sandbox.
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        lesson_url = base + "/lessons/what-is-a-container/"
        page = browser.open(lesson_url, timeout=10).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        browser.open(urllib.request.Request(
            base + "/accounts/guest/", data=urllib.parse.urlencode(
                {"csrfmiddlewaretoken": token, "next": "/lessons/what-is-a-container/"}).encode()), timeout=10)
        page = browser.open(lesson_url, timeout=10).read().decode()
        assert "data-engine-problem" not in page, "the lesson page reports an engine problem"
        start = re.search(r'action="(/sandboxes/start/[^"]+)"', page)
        assert start, "the lesson page offers no Start button"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        pane = browser.open(urllib.request.Request(
            base + start.group(1), data=urllib.parse.urlencode({"csrfmiddlewaretoken": token}).encode(),
            headers={"HX-Request": "true"}), timeout=60).read().decode()
        deadline = time.monotonic() + 60
        while 'data-state="running"' not in pane:
            assert 'data-state="failed"' not in pane, pane
            assert time.monotonic() < deadline, f"the sandbox did not start: {pane}"
            time.sleep(1)
            pane = browser.open(lesson_url, timeout=10).read().decode()
        sandbox_id = re.search(r'data-sandbox-id="([0-9a-f-]+)"', pane).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        browser.open(urllib.request.Request(
            f"{base}/sandboxes/{sandbox_id}/stop/", data=urllib.parse.urlencode({"csrfmiddlewaretoken": token}).encode(),
            headers={"HX-Request": "true"}), timeout=90).read()
        output = log_path.read_text()
        assert "Missing Debian packages" not in output, output[-4000:]
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGTERM)
        try:
            make.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=10)
        # The private Redis is a daemon on purpose (it outlives a server restart); this clone's goes.
        redis_pid = clone / "data" / "redis" / "redis.pid"
        if redis_pid.exists():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(redis_pid.read_text().strip()), signal.SIGTERM)
        if sandbox_id:  # in case the Stop above never ran
            for container in docker_client.containers.list(all=True, ignore_removed=True, filters={"label": f"tutorial.sandbox={sandbox_id}"}):
                container.remove(force=True)
    deadline = time.monotonic() + 15  # each server process finishes its open requests first
    while (left := _processes_under(clone)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, "make run left server processes behind 15 s after SIGTERM"
