"""``make run`` (scripts/run-site.sh) serves with DEBUG off: what a visitor sees of a bad Host
header or an unknown page says nothing about the server, the pages' scripts (xterm.js, htmx)
are still served, and each answer carries the CSP. Run as make run runs it (several processes
with the private Redis when redis-server is installed); no engine is needed for these pages."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.daphne_process import free_port

REPO = Path(__file__).resolve().parents[2]
# A guest made by a script two days ago that never did anything.
OLD_GUEST = """
import datetime as dt
from django.contrib.auth import get_user_model
from django.utils import timezone
user = get_user_model().objects.create_user(username="guest-from-a-script")
user.set_unusable_password()
user.date_joined = timezone.now() - dt.timedelta(days=2)
user.save()
"""


def _get(url: str, host: str | None = None) -> tuple[int, str, dict]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), dict(exc.headers)


@contextlib.contextmanager
def serving(tmp: Path):
    """scripts/run-site.sh on its own data folder with no engine (no gateway, no reaper); yields
    its base URL and process once /healthz answers; SIGTERM at the end, as Ctrl+C would."""
    port = free_port()
    env = {**os.environ, "TUTORIAL_DATA_DIR": str(tmp), "TUTORIAL_SQLITE_PATH": str(tmp / "db.sqlite3"),
           "PORT": str(port), "DOCKER_HOST": f"unix://{tmp}/no-engine.sock"}
    for name in ("DJANGO_DEBUG", "TUTORIAL_DEV", "DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY_FILE", "REDIS_URL",
                 "DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                   timeout=180, capture_output=True)
    subprocess.run([sys.executable, "manage.py", "shell", "-c", OLD_GUEST], cwd=REPO, env=env, check=True,
                   timeout=120, capture_output=True)
    log = (tmp / "run-site.log").open("wb")
    process = subprocess.Popen(["./scripts/run-site.sh"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                if _get(base + "/healthz")[0] == 200:
                    break
            assert process.poll() is None, (tmp / "run-site.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp / "run-site.log").read_text()[-3000:]
            time.sleep(0.25)
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("make-run")
    try:
        with serving(tmp) as (base, _):
            yield base, tmp / "db.sqlite3"
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((tmp / "redis" / "redis.pid").read_text().strip()), signal.SIGTERM)


def test_ending_make_run_stops_everything_it_started(tmp_path):
    """Ctrl+C on `make run` leaves nothing running: not the server processes, not its private
    Redis (a Redis left behind keeps its socket and memory until the machine restarts)."""
    with serving(tmp_path) as (_, process):
        redis_pid = int((tmp_path / "redis" / "redis.pid").read_text().strip())
        os.kill(redis_pid, 0)  # running while the site is
    assert process.returncode is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(redis_pid):
        time.sleep(0.2)
    if _alive(redis_pid):
        os.kill(redis_pid, signal.SIGTERM)
        pytest.fail("the site's private Redis was still running after the site stopped")
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of the site's process group is left


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_bad_host_header_shows_nothing_of_the_settings(make_run):
    status, body, _ = _get(make_run[0] + "/", host="evil.example")
    assert status == 400
    for leak in ("ALLOWED_HOSTS", "DisallowedHost", "SECRET_KEY", "settings", "Traceback"):
        assert leak not in body


def test_an_unknown_page_is_a_friendly_404_without_the_url_list(make_run):
    status, body, headers = _get(make_run[0] + "/no/such/page/")
    assert status == 404 and "Page not found" in body
    for leak in ("URLconf", "urlpatterns", "tutorial.urls", "sandboxes/", "DEBUG = True"):
        assert leak not in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_the_pages_scripts_are_still_served(make_run):
    base = make_run[0]
    status, page, _ = _get(base + "/lessons/what-is-a-container/")
    assert status == 200
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert any("xterm" in src for src in scripts) and any("htmx" in src for src in scripts)
    for src in scripts:
        assert _get(base + src)[0] == 200, src
    # The page names its icon, so browsers do not ask for a /favicon.ico that is not there.
    [icon] = re.findall(r'<link rel="icon" href="([^"]+)"', page)
    assert _get(base + icon)[0] == 200, icon


def test_old_unused_guests_are_removed_when_the_site_starts(make_run):
    import sqlite3

    deadline = time.monotonic() + 60
    while True:
        with contextlib.closing(sqlite3.connect(make_run[1], timeout=20)) as db:
            left = db.execute("SELECT COUNT(*) FROM auth_user WHERE username = 'guest-from-a-script'").fetchone()[0]
        if left == 0:
            break
        assert time.monotonic() < deadline, "make run did not remove the old guest"
        time.sleep(0.5)
