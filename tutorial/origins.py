"""The websocket Origin check: scheme, host and port, exactly.

A browser opens a websocket to any site from any page, sending that site's cookies, and says
where the page came from only in the ``Origin`` header. Channels' ``AllowedHostsOriginValidator``
compares the host alone, so a page on another port of the same host (a learner's published port
on 127.0.0.1 is one) drove the instructor dashboard and read a learner's terminal. Here a
handshake goes through only when its Origin is, scheme, host and port alike:

- the site itself: the address the browser connected to (its ``Host`` header, a host of
  ``ALLOWED_HOSTS``, with its port) under this connection's scheme (``ws`` is ``http``, ``wss``
  is ``https``); or
- one of ``WEBSOCKET_ALLOWED_ORIGINS`` (``TUTORIAL_ALLOWED_ORIGINS``): the public origin when a
  reverse proxy serves the site under another scheme or port than the server's own.

A missing, ``null``, malformed or wildcard Origin is refused. Default ports are made explicit
(``http://h`` is ``http://h:80``) before comparing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host

Origin = tuple[str, str, int]  # scheme, host (lowercase, IPv6 without brackets), port
DEFAULT_PORTS = {"http": 80, "https": 443}
PAGE_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` as a comparable triple; None for anything else (paths included)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "*" in parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme]


def site_origin(host_header: str, scheme: str, allowed_hosts: list[str]) -> Origin | None:
    """The origin of the page that served this site at the address the browser connected to."""
    domain, _port = split_domain_port(host_header)
    page_scheme = PAGE_SCHEME.get(scheme)
    if not domain or page_scheme is None or not validate_host(domain, allowed_hosts):
        return None
    return parse_origin(f"{page_scheme}://{host_header}")


def origin_allowed(origin: str | None, host_header: str | None, scheme: str, allowed_hosts: list[str],
                   allowed_origins: frozenset[Origin]) -> bool:
    if not origin:
        return False
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    if parsed in allowed_origins:
        return True
    return host_header is not None and parsed == site_origin(host_header, scheme, allowed_hosts)


def configured_origins(values: list[str]) -> frozenset[Origin]:
    origins = set()
    for value in values:
        parsed = parse_origin(value)
        if parsed is None:
            raise ImproperlyConfigured(
                f"TUTORIAL_ALLOWED_ORIGINS: {value!r} is not an origin like https://class.example.org[:port]"
            )
        origins.add(parsed)
    return frozenset(origins)


class OriginValidator:
    """ASGI middleware for websockets: refuse the handshake unless the Origin is allowed.
    Settings are read per handshake (a tuple comparison when unchanged), so tests can override them."""

    def __init__(self, application):
        self.application = application
        self._configured: tuple[tuple[str, ...], frozenset[Origin]] | None = None
        self.allowed_origins()  # a malformed TUTORIAL_ALLOWED_ORIGINS stops the server at start

    def allowed_origins(self) -> frozenset[Origin]:
        values = tuple(settings.WEBSOCKET_ALLOWED_ORIGINS)
        if self._configured is None or self._configured[0] != values:
            self._configured = (values, configured_origins(list(values)))
        return self._configured[1]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("OriginValidator guards websockets only")
        headers = {}
        for name, value in scope.get("headers", []):
            if name in (b"origin", b"host"):
                if name in headers:  # two Origin or Host headers: ambiguous, refused
                    headers[name] = None
                    continue
                headers[name] = value.decode("latin1")
        if origin_allowed(headers.get(b"origin"), headers.get(b"host"), scope.get("scheme", "ws"),
                          settings.ALLOWED_HOSTS, self.allowed_origins()):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
