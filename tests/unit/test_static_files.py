"""Static files are answered in front of Django (tutorial/static_files.py) as WhiteNoise answered
them from MIDDLEWARE: the file, its validators (304), the security headers; other paths reach Django."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings

from tutorial.static_files import StaticFiles

SITE_CSS = Path(settings.BASE_DIR) / "static" / "css" / "site.css"


@pytest.fixture(autouse=True)
def served_as_make_run_serves(settings):
    """DEBUG's way (what `make run` does): files found in the apps' static folders, on each request."""
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


async def django_stand_in(scope, receive, send):
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


async def get(path: str, headers: list[tuple[bytes, bytes]] = (), method: str = "GET"):
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "scheme": "http",
             "query_string": b"", "headers": list(headers)}
    communicator = ApplicationCommunicator(StaticFiles(django_stand_in), scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(5)
    body = await communicator.receive_output(5)
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body["body"]


async def test_a_static_file_is_served_with_its_validators_and_security_headers():
    status, headers, body = await get(f"{settings.STATIC_URL}css/site.css")
    assert status == 200
    assert body == SITE_CSS.read_bytes()
    assert headers["content-type"].startswith("text/css")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"

    again, _, empty = await get(f"{settings.STATIC_URL}css/site.css", [(b"if-none-match", headers["etag"].encode())])
    assert (again, empty) == (304, b"")


async def test_other_paths_and_missing_files_reach_django():
    assert (await get("/lessons/"))[::2] == (299, b"django")
    assert (await get(f"{settings.STATIC_URL}css/no-such-file.css"))[::2] == (299, b"django")


async def test_a_static_file_refuses_to_be_posted_to():
    status, headers, _ = await get(f"{settings.STATIC_URL}css/site.css", method="POST")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
