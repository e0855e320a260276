"""The websocket Origin rule alone: scheme, host and port compared exactly, defaults explicit."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from tutorial.origins import configured_origins, origin_allowed, parse_origin

HOSTS = ["127.0.0.1", "localhost", "[::1]", ".example.org"]


def allowed(origin, host, scheme="ws", extra=()):
    return origin_allowed(origin, host, scheme, HOSTS, configured_origins(list(extra)))


def test_parse_makes_default_ports_explicit_and_lowercases():
    assert parse_origin("HTTP://LocalHost") == ("http", "localhost", 80)
    assert parse_origin("https://[::1]") == ("https", "::1", 443)
    assert parse_origin("http://127.0.0.1:8000/") == ("http", "127.0.0.1", 8000)


@pytest.mark.parametrize("value", ["null", "", "ws://127.0.0.1:8000", "http://", "http://h:99999", "http://u:p@h",
                                   "http://h/path", "http://h?x", "http://*.example.org", "file:///etc"])
def test_parse_refuses_what_is_not_an_origin(value):
    assert parse_origin(value) is None


def test_the_site_is_what_the_browser_connected_to():
    assert allowed("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert allowed("http://[::1]:8000", "[::1]:8000")
    assert allowed("http://class.example.org", "class.example.org")  # a subdomain pattern of ALLOWED_HOSTS
    assert allowed("https://localhost", "localhost", scheme="wss")
    assert not allowed("http://127.0.0.1:9000", "127.0.0.1:8000")
    assert not allowed("https://127.0.0.1:8000", "127.0.0.1:8000")
    assert not allowed("http://localhost:8000", "127.0.0.1:8000")
    assert not allowed("http://evil.example:8000", "evil.example:8000")  # not an allowed host
    assert not allowed(None, "127.0.0.1:8000")
    assert not allowed("http://127.0.0.1:8000", None)


def test_configured_origins_are_exact():
    extra = ["https://class.example.org"]
    assert allowed("https://class.example.org:443", "127.0.0.1:8000", extra=extra)
    assert not allowed("https://other.example.org", "127.0.0.1:8000", extra=extra)
    with pytest.raises(ImproperlyConfigured):
        configured_origins(["class.example.org"])
