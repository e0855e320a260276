"""Request bodies are refused past ``REQUEST_BODY_MAX_BYTES`` before they are buffered, and a
client must send a whole request within ``REQUEST_HEADER_TIMEOUT_SECONDS``.

Why two layers. Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is checked only when a view reads the
form, long after the body arrived. Daphne (Twisted) receives the *whole* body first (into a
temporary file) and then puts all of it, chunk by chunk, on the application's queue at once: an
anonymous 256 MB POST grew a server process by 270 MB before any ASGI code ran. So:

- :class:`RequestBodyLimit`, an ASGI middleware around the http app: 413 for a Content-Length
  over the limit, and for a streamed body once the ``http.request`` chunks add up past it,
  before Django reads any of it. This is what any ASGI server that streams bodies needs.
- :func:`guard_daphne`, for daphne itself: its request class answers 413 as soon as the headers
  announce too much (or chunked data passes the limit), discards the rest instead of storing it,
  and closes; and a request (line, headers, body) not complete within the timeout gets 408, so a
  client trickling bytes cannot hold a connection for ever (Twisted's own timeout is an idle
  timeout that every byte resets). Daphne's ``--http-timeout`` is a different thing: how long
  the *application* may take to answer once the request is in.
"""

from __future__ import annotations

import sys

from django.conf import settings

TOO_LARGE_BODY = b"Request body too large.\n"
TOO_SLOW_BODY = b"Request not received in time.\n"


def _max_bytes() -> int:
    return settings.REQUEST_BODY_MAX_BYTES


def limit_for(path: str, default: int) -> int:
    """The body limit of one path: a larger one where a form uploads files (a scenario zip), from
    ``REQUEST_BODY_MAX_BYTES_BY_PATH`` (path prefix: bytes); ``default`` everywhere else."""
    for prefix, limit in getattr(settings, "REQUEST_BODY_MAX_BYTES_BY_PATH", {}).items():
        if path.startswith(prefix):
            return int(limit)
    return default


class BodyTooLarge(Exception):
    pass


class RequestBodyLimit:
    """ASGI middleware for ``http`` scopes (see the module docstring)."""

    def __init__(self, app, max_bytes: int | None = None):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes if self.max_bytes is not None else limit_for(scope.get("path", ""), _max_bytes())
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length":
                if not value.strip().isdigit() or int(value) > limit:
                    return await _refuse(send)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send)


async def _refuse(send) -> None:
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
                            (b"content-length", str(len(TOO_LARGE_BODY)).encode())]})
    await send({"type": "http.response.body", "body": TOO_LARGE_BODY})


# --- daphne ---------------------------------------------------------------------------------------

class _Discard:
    """Where the body of a refused request goes: nowhere."""

    closed = False

    def write(self, data) -> None:
        pass

    def seek(self, *args) -> int:
        return 0

    def read(self, *args) -> bytes:
        return b""

    def close(self) -> None:
        self.closed = True


def _raw_response(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def guard_daphne(max_bytes: int | None = None, deadline_seconds: float | None = None) -> bool:
    """Make the running daphne use the guarded request class; True when daphne is the server.

    Only when daphne's server module is already loaded (we are inside daphne): importing it
    elsewhere would install Twisted's reactor in a process that does not serve."""
    if "daphne.server" not in sys.modules:
        return False
    import daphne.server
    from daphne.http_protocol import HTTPFactory, WebRequest

    limit = _max_bytes() if max_bytes is None else max_bytes
    deadline = settings.REQUEST_HEADER_TIMEOUT_SECONDS if deadline_seconds is None else deadline_seconds

    def arm(channel) -> None:
        """Until a request line arrives (a new connection, or after a response on a kept-alive
        one), the connection has ``deadline`` seconds to send one."""
        from twisted.internet import reactor  # the reactor daphne installed, at call time

        channel._tutorial_waiting = True

        def expire():
            transport = channel.transport
            if getattr(channel, "_tutorial_waiting", False) and transport is not None and getattr(transport, "connected", 0):
                transport.abortConnection()

        if deadline > 0:
            channel._tutorial_line_timer = reactor.callLater(deadline, expire)

    def disarm(channel) -> None:
        channel._tutorial_waiting = False
        timer = getattr(channel, "_tutorial_line_timer", None)
        if timer is not None and timer.active():
            timer.cancel()

    class GuardedRequest(WebRequest):
        def __init__(self, *args, **kwargs):
            self._refused = False
            self._received = 0
            self._deadline = None
            super().__init__(*args, **kwargs)
            disarm(self.channel)
            if deadline > 0:
                from twisted.internet import reactor

                self._deadline = reactor.callLater(deadline, self._too_slow)

        def _stop_deadline(self) -> None:
            if self._deadline is not None and self._deadline.active():
                self._deadline.cancel()

        def _refuse(self, status: str, body: bytes) -> None:
            """Answer at once, stop storing the body, and close once the answer is out (reading
            and dropping whatever else the client still sends, so it can read the answer)."""
            if self._refused:
                return
            self._refused = True
            self.content = _Discard()
            transport = self.channel.transport
            if transport is not None:
                transport.write(_raw_response(status, body))
                transport.loseWriteConnection() if hasattr(transport, "loseWriteConnection") else transport.loseConnection()

        def _limit(self) -> int:
            # The request line (and its path) is read before the headers and the body.
            path = getattr(self.channel, "_path", b"") or b""
            return limit_for(path.decode("latin-1").split("?", 1)[0], limit) if max_bytes is None else limit

        def gotLength(self, length):
            if length is not None and length > self._limit():
                self._refuse("413 Payload Too Large", TOO_LARGE_BODY)
                return
            super().gotLength(length)

        def handleContentChunk(self, data):
            if self._refused:
                return
            self._received += len(data)
            if self._received > self._limit():
                self._refuse("413 Payload Too Large", TOO_LARGE_BODY)
                return
            super().handleContentChunk(data)

        def _too_slow(self) -> None:
            self._refuse("408 Request Timeout", TOO_SLOW_BODY)
            if self.channel is not None and self.channel.transport is not None:
                self.channel.transport.abortConnection()

        def requestReceived(self, command, path, version):
            self._stop_deadline()
            if self._refused:
                if self.channel is not None and self.channel.transport is not None:
                    self.channel.transport.loseConnection()
                return
            super().requestReceived(command, path, version)

        def finish(self):
            channel = self.channel
            super().finish()
            if channel is not None and channel.transport is not None:
                arm(channel)

        def connectionLost(self, reason):
            self._stop_deadline()
            if self.channel is not None:
                disarm(self.channel)
            super().connectionLost(reason)

    class GuardedHTTPFactory(HTTPFactory):
        def buildProtocol(self, addr):
            protocol = super().buildProtocol(addr)
            protocol.requestFactory = GuardedRequest
            channel = getattr(protocol, "_channel", protocol)
            arm(channel)
            return protocol

    daphne.server.HTTPFactory = GuardedHTTPFactory
    return True
