"""The site process is killed with SIGKILL in the middle of creating a sandbox, then restarted:
the reaper fails the stuck start with a reason, removes what the create left on the engine, and
the learner starts again with no manual step.

Real processes: `manage.py shell` does the start (as a site process would) against its own SQLite
file, and is killed -9 as soon as the engine holds the new container; the reaper runs as
`manage.py reap_sandboxes`, limited to that sandbox (the engine may be shared with other work)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.engine]
ROOT = Path(__file__).resolve().parents[2]

START = """
import asyncio
from django.contrib.auth import get_user_model
from sandbox import services
user, _ = get_user_model().objects.get_or_create(username="killed")
sandbox = asyncio.run(services.start_sandbox(user, {lesson!r}, "plain", "base"))
print(json.dumps({{"id": str(sandbox.id), "state": sandbox.state, "reason": sandbox.failure_reason}}))
"""
STATE = """
from sandbox.models import Sandbox
print(json.dumps([{"id": str(s.id), "state": s.state, "reason": s.failure_reason} for s in Sandbox.objects.all()]))
"""
STOP = """
import asyncio
from sandbox import services
from sandbox.models import Sandbox
for s in Sandbox.objects.filter(state="running"):
    asyncio.run(services.stop_sandbox(s))
"""


def manage(env, *args, timeout=60) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def shell(env, code: str) -> str:
    return manage(env, "shell", "-c", "import json\n" + code)


def test_sigkill_during_create_is_recovered_by_the_reaper(tmp_path, docker_client, base_image, labelled_leftovers):
    lesson = f"sigkill-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TUTORIAL_DATA_DIR": str(tmp_path / "data"), "TUTORIAL_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
           "TUTORIAL_SANDBOX_START_TIMEOUT": "0", "TUTORIAL_WARM_POOL": ""}
    manage(env, "migrate", "-v0", "--skip-checks")
    killed_id = None
    try:
        for _attempt in range(3):  # the kill must land between "container made" and "row running"
            site = subprocess.Popen([sys.executable, "manage.py", "shell", "-c", "import json\n" + START.format(lesson=lesson)],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            found = []
            while not found and site.poll() is None and time.monotonic() < deadline:
                found = docker_client.api.containers(all=True, filters={"label": f"tutorial.lesson={lesson}"})
                if not found:
                    time.sleep(0.005)
            os.kill(site.pid, signal.SIGKILL)
            site.wait()
            rows = json.loads(shell(env, STATE).strip().splitlines()[-1])
            starting = [r for r in rows if r["state"] == "starting"]
            if found and starting:
                killed_id = starting[0]["id"]
                break
            shell(env, STOP)  # too late: it finished starting; try again
        assert killed_id, "could not kill the site during a create in three attempts"
        assert labelled_leftovers(killed_id)  # the half-made sandbox is on the engine

        report = json.loads(manage(env, "reap_sandboxes", "--sandbox", killed_id, "--json").strip().splitlines()[-1])
        assert report["stuck_failed"] == 1
        assert labelled_leftovers(killed_id) == []
        rows = {r["id"]: r for r in json.loads(shell(env, STATE).strip().splitlines()[-1])}
        assert rows[killed_id]["state"] == "failed" and "start it again" in rows[killed_id]["reason"]

        # The restarted site: the learner presses Start again and gets a running sandbox.
        again = json.loads(shell(env, START.format(lesson=lesson)).strip().splitlines()[-1])
        assert again["state"] == "running", again
        shell(env, STOP)
        assert labelled_leftovers(again["id"]) == []
    finally:
        for container in docker_client.containers.list(all=True, ignore_removed=True, filters={"label": f"tutorial.lesson={lesson}"}):
            container.remove(force=True)
