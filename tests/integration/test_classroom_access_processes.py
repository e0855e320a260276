"""Access changes cross processes, served the way ``make run`` serves (scripts/serve.py: two daphne
processes on one socket, a private Redis channel layer, production settings). The instructor's
dashboard and their console on a learner's sandbox are open on the site; a third process
(``manage.py``) removes the learner and then revokes the instructor: the console closes with 4403,
then the dashboard does. And an instructor's read-only console served by the other process than
the learner's sees the idle learner's prompt at once (it asks the learner's console for its size
through Redis, then redraws)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import sys

import psutil
import pytest
import websocket

from tests.daphne_process import private_redis, running_daphne
from tests.websockets import close_code, read_until_frame

from .classroom_services import IN_CI, REPO

pytestmark = pytest.mark.engine

SETUP = """
import asyncio
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from classroom import roster
from sandbox import services as sandbox_services
users = get_user_model().objects
teacher = users.create_user("teacher", password="unused-here-9")
learner = users.create_user("learner", password="unused-here-9")
roster.grant_instructor(teacher)
room = roster.create_classroom(teacher, "Processes", ["what-is-a-container"])
roster.join(room, learner, "Lena")
sandbox = asyncio.run(sandbox_services.start_sandbox(learner, "what-is-a-container", "plain", "base"))
keys = []
for user in (teacher, learner):
    session = SessionStore()
    session.update({"_auth_user_id": str(user.pk), "_auth_user_hash": user.get_session_auth_hash(),
                    "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"})
    session.create()
    keys.append(session.session_key)
print(room.pk, sandbox.id, sandbox.state, *keys)
"""
REMOVE_LEARNER = """
from classroom import roster
from classroom.models import Classroom, Membership
room = Classroom.objects.get(name="Processes")
roster.remove_member(room, Membership.objects.get(classroom=room, user__username="learner").pk)
"""
STOP = """
import asyncio
from sandbox import services
from sandbox.models import Sandbox
for sandbox in Sandbox.objects.all():
    asyncio.run(services.stop_sandbox(sandbox))
    print(sandbox.id)
"""


@pytest.fixture
def site_env(tmp_path, docker_client, base_image, labelled_leftovers):
    data_dir = tmp_path / "site-data"
    data_dir.mkdir()
    with contextlib.ExitStack() as stack:
        try:
            redis_url = stack.enter_context(private_redis(data_dir))
        except RuntimeError as exc:
            if IN_CI:
                pytest.fail(str(exc))
            pytest.skip(str(exc))
        env = {**os.environ, "TUTORIAL_DATA_DIR": str(data_dir), "TUTORIAL_SQLITE_PATH": str(data_dir / "db.sqlite3"),
               "REDIS_URL": redis_url, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
               "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SETTINGS_MODULE": "tutorial.settings"}
        env.pop("DATABASE_URL", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=180)
        try:
            yield env
        finally:
            ids = manage(env, "shell", "-c", STOP).split()
            assert all(labelled_leftovers(sandbox_id) == [] for sandbox_id in ids)


def manage(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_removal_and_revocation_in_another_process_close_the_open_sockets(site_env, tmp_path):
    room, sandbox_id, state, session_key, _learner_key = manage(site_env, "shell", "-c", SETUP).split()[-5:]
    assert state == "running"
    with running_daphne(site_env, tmp_path / "site.log", ready_path="/healthz", processes=2) as site:
        ws_base = site.url.replace("http://", "ws://")
        cookie = f"sessionid={session_key}"
        dashboard = websocket.create_connection(f"{ws_base}/ws/classrooms/{room}/dashboard/", timeout=15,
                                                origin=site.url, cookie=cookie)
        console = websocket.create_connection(f"{ws_base}/ws/sandboxes/{sandbox_id}/console/", timeout=15,
                                              origin=site.url, cookie=cookie)
        try:
            assert '"hello"' in dashboard.recv()
            assert '"running"' in console.recv()

            manage(site_env, "shell", "-c", REMOVE_LEARNER)
            assert close_code(console) == 4403
            assert '"roster"' in dashboard.recv()

            manage(site_env, "grant_instructor", "--revoke", "teacher")
            assert close_code(dashboard) == 4403
        finally:
            console.close()
            dashboard.close()


def serving_process(site, ws: websocket.WebSocket) -> int:
    """The pid of the daphne process that holds this websocket's other end."""
    port = ws.sock.getsockname()[1]
    for child in psutil.Process(site.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(c.raddr and c.raddr.port == port for c in child.net_connections(kind="tcp")):
                return child.pid
    raise AssertionError(f"no process serves the websocket from port {port}")


def read_to_prompt(ws: websocket.WebSocket, after: bytes = b"", timeout: float = 20.0) -> bytes:
    """Output until the shell's prompt is last on the screen (after ``after``, when given)."""
    seen = bytearray()

    def prompt_last(frame) -> bool:
        if isinstance(frame, bytes):
            seen.extend(frame)
        return bool(re.search(re.escape(after) + rb"[^\n]*\$ [^\n]*\Z", bytes(seen)))

    read_until_frame(ws, prompt_last, timeout)
    return bytes(seen)


def test_a_watcher_in_the_other_process_sees_the_idle_learners_prompt_at_the_learners_size(site_env, tmp_path):
    _room, sandbox_id, _state, teacher_key, learner_key = manage(site_env, "shell", "-c", SETUP).split()[-5:]
    with running_daphne(site_env, tmp_path / "site.log", ready_path="/healthz", processes=2) as site:
        url = site.url.replace("http://", "ws://") + f"/ws/sandboxes/{sandbox_id}/console/"
        learner = websocket.create_connection(url, timeout=15, origin=site.url, cookie=f"sessionid={learner_key}")
        watchers = []
        try:
            assert '"running"' in learner.recv()
            learner.send(json.dumps({"type": "resize", "cols": 100, "rows": 30}))
            learner.send_binary(b"echo idle-$((5*5))\r")
            read_to_prompt(learner, after=b"idle-25\r\n")
            # The kernel hands each new websocket to either process: open watchers until one lands
            # in the other process (each of them must see the prompt all the same).
            learners_process = serving_process(site, learner)
            for _ in range(8):
                watcher = websocket.create_connection(url, timeout=15, origin=site.url, cookie=f"sessionid={teacher_key}")
                watchers.append(watcher)
                assert '"running"' in watcher.recv()
                assert b"idle-25" in read_to_prompt(watcher, timeout=5)
                if serving_process(site, watcher) != learners_process:
                    break
            else:
                raise AssertionError("every watcher landed in the learner's process")
            learner.send_binary(b"stty size; echo size-$((2+2))\r")
            assert b"30 100" in read_to_prompt(learner, after=b"size-4\r\n")
        finally:
            for ws in (learner, *watchers):
                ws.close()
