"""The websocket Origin check through the real ASGI app, signed in as the classroom's instructor:
only a page of the site itself (scheme, host and port) or a configured proxy origin opens the
dashboard. A page on another port of the same host (a learner's published port is one) does not."""

from __future__ import annotations

import pytest

from tests.websockets import next_text

pytestmark = pytest.mark.django_db(transaction=True)

SITE = b"127.0.0.1:8000"


@pytest.fixture
def handshake(dashboard, classroom, instructor):
    """Open the instructor's dashboard websocket with the given Origin (None: no header)."""

    async def attempt(origin: str | None, *, host: bytes = SITE, scheme: str | None = None, extra=()) -> bool:
        ws = await dashboard(classroom.pk, instructor, origin=origin, host=host.decode(), extra_headers=extra)
        if scheme is not None:
            ws.scope["scheme"] = scheme
        connected, _ = await ws.connect()
        if not connected:
            return False
        hello = await next_text(ws, timeout=5)
        await ws.disconnect()
        return hello["kind"] == "hello"

    return attempt


REFUSED = [
    ("http://127.0.0.1:32768", SITE),  # a learner's published port on the same host
    ("http://127.0.0.1:8001", SITE),
    ("http://127.0.0.1", SITE),  # port 80
    ("https://127.0.0.1:8000", SITE),  # same host and port, another scheme
    ("http://localhost:8000", SITE),  # an allowed host, but not the one this socket was opened on
    ("http://evil.example:8000", SITE),
    ("http://evil.example:8000", b"evil.example:8000"),  # DNS rebinding: not an allowed host
    ("null", SITE),  # sandboxed iframes, file: pages
    ("http://127.0.0.1:8000/lessons/", SITE),  # not an origin
    ("http://127.0.0.1:8000@evil.example", SITE),
    (None, SITE),  # no Origin header at all
]


async def test_only_the_sites_exact_origin_opens_the_dashboard(handshake):
    assert await handshake("http://127.0.0.1:8000")
    opened = [(origin, host) for origin, host in REFUSED if await handshake(origin, host=host)]
    assert opened == []


async def test_two_origin_headers_are_refused(handshake):
    assert not await handshake("http://127.0.0.1:8000", extra=[(b"origin", b"http://127.0.0.1:32768")])


async def test_https_page_over_wss_is_accepted_and_default_ports_compare_equal(handshake):
    assert await handshake("https://localhost", host=b"localhost:443", scheme="wss")
    assert not await handshake("http://localhost", host=b"localhost:443", scheme="wss")


async def test_a_reverse_proxy_origin_is_accepted_when_configured(handshake, settings):
    # TLS ends at the proxy (https on 443); daphne sees plain ws on 127.0.0.1:8000.
    assert not await handshake("https://class.example.org", host=b"class.example.org")
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["https://class.example.org"]
    assert await handshake("https://class.example.org", host=b"class.example.org")
    assert await handshake("https://class.example.org:443", host=b"127.0.0.1:8000")
    assert not await handshake("https://class.example.org:8443", host=b"class.example.org")
    assert not await handshake("http://class.example.org", host=b"class.example.org")
