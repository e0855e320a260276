"""Websockets opened through the site's real ASGI app (origin check, session, consumer) as a
browser tab opens them, and read as the page reads them. One place for: a socket signed in as a
user, output read (and acked, as xterm.js acks) until a pattern shows, control messages read until
one is wanted, the close code waited for, and every socket a test opened closed at its end.

The ``console`` and ``dashboard`` fixtures in tests/conftest.py open sockets through ``Sockets``;
tests import the readers from here. At the end, the same readings of a socket to a site served by
daphne processes (the websocket-client library).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time

import websocket
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

SITE_HOST = "127.0.0.1:8000"
SITE_ORIGIN = f"http://{SITE_HOST}"


def console_path(sandbox_id) -> str:
    return f"/ws/sandboxes/{sandbox_id}/console/"


def dashboard_path(classroom_id) -> str:
    return f"/ws/classrooms/{classroom_id}/dashboard/"


def session_cookie(user) -> str:
    """Sign ``user`` in through Django's session machinery; the value of a Cookie header."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def communicator(path: str, user=None, *, origin: str | None = SITE_ORIGIN, host: str = SITE_HOST,
                       extra_headers=(), subprotocols=None) -> WebsocketCommunicator:
    """A socket to ``path`` from a page of the site (``origin``; None sends no Origin header),
    signed in as ``user`` (None: anonymous); not yet connected."""
    from tutorial.asgi import application  # the app is built only once Django's settings are in place

    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if user is not None:
        headers.append((b"cookie", (await sync_to_async(session_cookie)(user)).encode()))
    headers += list(extra_headers)
    return WebsocketCommunicator(application, path, headers=headers, subprotocols=subprotocols)


class Sockets:
    """The sockets one test opened, all closed when it ends (a console left open keeps its
    engine attach, and its slot, until the event loop goes)."""

    def __init__(self) -> None:
        self.opened: list[WebsocketCommunicator] = []

    async def open(self, path: str, user=None, **options) -> WebsocketCommunicator:
        socket = await communicator(path, user, **options)
        self.opened.append(socket)
        return socket

    async def close_all(self) -> None:
        for socket in self.opened:
            # A socket the server closed, or whose consumer a test crashed or cancelled on purpose,
            # reports that again here; only the ones still open have anything left to close.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await socket.disconnect()
        self.opened.clear()


async def connect_console(console, sandbox, user) -> WebsocketCommunicator:
    """A running sandbox's console opened as the page opens it (``console`` is the fixture):
    connected, told "running", and its size reported as xterm.js reports it on open (the shell
    then redraws its prompt)."""
    socket = await console(sandbox.id, user)
    connected, _ = await socket.connect()
    assert connected
    assert await next_text(socket) == {"type": "state", "state": "running"}
    await socket.send_to(text_data=json.dumps({"type": "resize", "cols": 100, "rows": 30}))
    return socket


async def ack(socket: WebsocketCommunicator, data: bytes) -> None:
    await socket.send_to(text_data=json.dumps({"type": "ack", "bytes": len(data)}))


async def read_until(socket: WebsocketCommunicator, pattern: bytes, timeout: float = 10.0) -> bytes:
    """Terminal output (acked as xterm.js acks it) until the regular expression ``pattern``
    matches; all of it. A close or the timeout fails the test with what was seen."""
    seen = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not re.search(pattern, seen):
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"{pattern!r} not seen; got {seen[-500:]!r}")
        try:
            message = await socket.receive_output(remaining)
        except asyncio.TimeoutError:
            raise AssertionError(f"{pattern!r} not seen in {timeout:g}s; got {seen[-500:]!r}") from None
        if message["type"] == "websocket.close":
            raise AssertionError(f"closed ({message.get('code')}) before {pattern!r}; got {seen[-500:]!r}")
        if message.get("bytes"):
            seen += message["bytes"]
            await ack(socket, message["bytes"])
    return seen


async def texts_until(socket: WebsocketCommunicator, wanted, timeout: float = 20.0) -> list[dict]:
    """Control messages (output acked meanwhile) up to and including the first that ``wanted``
    accepts. A close or the timeout fails the test with the messages seen."""
    seen: list[dict] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no matching control message; saw {seen}")
        message = await socket.receive_output(remaining)
        if message["type"] == "websocket.close":
            raise AssertionError(f"closed ({message.get('code')}); saw {seen}")
        if message.get("bytes"):
            await ack(socket, message["bytes"])
        elif message.get("text"):
            seen.append(json.loads(message["text"]))
            if wanted(seen[-1]):
                return seen


async def next_text(socket: WebsocketCommunicator, timeout: float = 10.0) -> dict:
    """The next control message (output before it is skipped, not acked)."""
    while True:
        message = await socket.receive_output(timeout)
        if message["type"] == "websocket.close":
            raise AssertionError(f"closed with {message.get('code')} while waiting for a control message")
        if message.get("text"):
            return json.loads(message["text"])


async def closed_with(socket: WebsocketCommunicator, *codes: int, timeout: float = 10.0) -> list[dict]:
    """Read to the close and assert its code is one of ``codes``; the control messages sent
    before it. Output is skipped and never acked: a viewer that stopped reading stays stopped."""
    seen: list[dict] = []
    while True:
        message = await socket.receive_output(timeout)
        if message["type"] == "websocket.close":
            assert message.get("code") in codes, (message, seen)
            return seen
        if message.get("text"):
            seen.append(json.loads(message["text"]))


def close_message(seen: list[dict]) -> dict | None:
    """The server's last ``close`` message (code, reason, retry) among control messages."""
    return next((message for message in reversed(seen) if message.get("type") == "close"), None)


# --- A site served by daphne processes ------------------------------------------------------------


def close_code(ws: websocket.WebSocket, timeout: float = 15.0) -> int:
    """Read (skipping terminal bytes and JSON) until the server closes; its close code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        frame = ws.recv_frame()  # raw frames: no automatic reply to a close the server already ended
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big")
    raise AssertionError("not closed in time")


def read_until_frame(ws: websocket.WebSocket, wanted, timeout: float = 30.0) -> None:
    """Read (acking output as xterm.js does) until ``wanted`` accepts a frame: the bytes of an
    output frame, or the JSON of a control message. A close fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            break
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise AssertionError(f"the console closed with {int.from_bytes(data[:2], 'big')}")
        if opcode == websocket.ABNF.OPCODE_BINARY:
            ws.send(json.dumps({"type": "ack", "bytes": len(data)}))
            if wanted(data):
                return
        elif opcode == websocket.ABNF.OPCODE_TEXT and wanted(json.loads(data)):
            return
    raise AssertionError("not seen in time")
