"""In Chromium: a page served from another port of the site's host (a learner's published port is
one) opens the instructor's dashboard websocket. The browser sends the instructor's cookies
(cookies ignore ports), so only the Origin check stands between that page and the class's live
data: the handshake must be refused, while the site's own dashboard page stays live."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.daphne_process import free_port

pytestmark = [pytest.mark.browser, pytest.mark.engine]
ROOT = Path(__file__).resolve().parents[2]

# Opens the dashboard websocket of classroom %(id)s on the site and reports what happened.
ATTACK_PAGE = """<!doctype html><title>learner's app</title><script>
window.result = null;
const ws = new WebSocket("ws://127.0.0.1:%(site_port)s/ws/classrooms/%(id)s/dashboard/");
ws.onmessage = (m) => { window.result = "message: " + m.data; ws.close(); };
ws.onclose = (e) => { if (window.result === null) window.result = "closed " + e.code; };
</script>"""

SETUP = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from classroom import roster
user = get_user_model().objects.create_user("teacher-origin", password="correct horse battery 9")
roster.grant_instructor(user)
room = roster.create_classroom(user, "Origin class", ["what-is-a-container"])
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(room.pk, session.session_key)
"""


def _site_env(tmp_path_factory) -> dict:
    found = sorted(tmp_path_factory.getbasetemp().glob("site-data*/db.sqlite3"))
    assert found, "the live site's database was not found"
    db = found[-1]
    env = {**os.environ, "TUTORIAL_DATA_DIR": str(db.parent), "TUTORIAL_SQLITE_PATH": str(db),
           "DJANGO_SETTINGS_MODULE": "tutorial.settings", "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    return env


@pytest.fixture
def other_port_page():
    """Serve one HTML page on another loopback port; yields a function setting its body and its URL."""
    body = {"html": ""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            data = body["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield body, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_port_cannot_open_the_instructors_dashboard(live_site, browser, tmp_path_factory, other_port_page):
    made = subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=_site_env(tmp_path_factory),
                          check=True, capture_output=True, text=True)
    classroom_id, session_key = made.stdout.split()[-2:]
    site_port = live_site.rsplit(":", 1)[1]
    context = browser.new_context()
    try:
        context.add_cookies([{"name": "sessionid", "value": session_key, "url": live_site}])
        page = context.new_page()
        # The site's own page: the dashboard goes live (the session and websocket work).
        page.goto(f"{live_site}/classrooms/{classroom_id}/")
        expect(page.locator("[data-live-status]")).to_have_text("live", timeout=10000)

        body, url = other_port_page
        body["html"] = ATTACK_PAGE % {"site_port": site_port, "id": classroom_id}
        page.goto(url)
        page.wait_for_function("window.result !== null", timeout=10000)
        result = page.evaluate("window.result")
        assert result.startswith("closed"), result  # no "hello", no class data
    finally:
        context.close()
