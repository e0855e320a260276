"""Access changes cross processes, served the way ``make run`` serves (scripts/serve.py: two daphne
processes on one socket, a private Redis channel layer, production settings). The instructor's
dashboard and their console on a learner's sandbox are open on the site; a third process
(``manage.py``) removes the learner and then revokes the instructor: the console closes with 4403,
then the dashboard does."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys

import pytest
import websocket

from tests.daphne_process import private_redis, running_daphne
from tests.websockets import close_code

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
session = SessionStore()
session.update({"_auth_user_id": str(teacher.pk), "_auth_user_hash": teacher.get_session_auth_hash(),
                "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"})
session.create()
print(room.pk, sandbox.id, sandbox.state, session.session_key)
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
    room, sandbox_id, state, session_key = manage(site_env, "shell", "-c", SETUP).split()[-4:]
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
