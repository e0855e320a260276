"""Asyncio on the Docker engine's hijacked HTTP streams (attach, exec start), and the small API
calls of a console connect (inspect, resize).

The docker SDK hands back blocking sockets for these; the console path must never block the event
loop nor hop threads per keystroke, so we speak the few lines of HTTP ourselves on a unix socket.
"""

from __future__ import annotations

import asyncio
import json
from typing import NamedTuple
from urllib.parse import urlencode

from .api import API_VERSION, engine_down_message, unix_path
from .errors import BackendError, EngineTimeout, EngineUnavailable
from .frames import FrameCutOff, read_frames


class HijackedStream:
    """A raw byte stream after the engine switched protocols."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self._closed = False

    async def read(self, max_bytes: int = 65536) -> bytes:
        if self._closed:
            return b""
        try:
            return await self.reader.read(max_bytes)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        if self._closed or self.writer.is_closing():
            raise BackendError("the console has closed")
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


# The engine answers an attach or exec start at once; a container it has wedged (an attach nobody
# reads holds its output) never answers, and a console connect must not wait for it for ever.
HIJACK_TIMEOUT_SECONDS = 30.0


async def hijack(docker_host: str, path: str, params: dict | None = None, body: dict | None = None, *,
                 timeout: float = HIJACK_TIMEOUT_SECONDS) -> HijackedStream:
    """POST ``path`` with ``Upgrade: tcp`` and return the raw stream the engine switches to.
    Raises :class:`EngineTimeout` when the engine has not switched within ``timeout``."""
    try:
        return await asyncio.wait_for(_hijack(docker_host, path, params, body), timeout)
    except asyncio.TimeoutError:
        raise EngineTimeout(f"the Docker engine did not open the stream within {timeout:g}s") from None


async def _hijack(docker_host: str, path: str, params: dict | None, body: dict | None) -> HijackedStream:
    try:
        reader, writer = await asyncio.open_unix_connection(unix_path(docker_host), limit=1 << 20)
    except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
        raise EngineUnavailable(engine_down_message(docker_host, exc.strerror or exc)) from exc
    query = f"?{urlencode(params)}" if params else ""
    payload = json.dumps(body).encode() if body is not None else b""
    request = (
        f"POST /{API_VERSION}{path}{query} HTTP/1.1\r\n"
        "Host: docker\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        writer.close()
        raise BackendError("the Docker engine closed the stream before answering") from exc
    except BaseException:  # the deadline (cancelled): no half-open stream is left behind
        writer.close()
        raise
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if status not in (101, 200):
        detail = await _read_error_body(reader, head)
        writer.close()
        if status == 404:
            raise BackendError(f"the sandbox is gone ({detail})")
        if status == 409:
            raise BackendError(f"the sandbox is not running ({detail})")
        raise BackendError(f"the Docker engine refused the console ({status}: {detail})")
    return HijackedStream(reader, writer)


class EngineAnswer(NamedTuple):
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None

    def message(self) -> str:
        """The engine's error message (its JSON ``message``), or the body as text."""
        try:
            return str(self.json().get("message"))
        except (ValueError, AttributeError):
            return self.body.decode(errors="replace").strip() or f"status {self.status}"


# A plain API call waits this long for the engine (the docker SDK's client timeout).
REQUEST_TIMEOUT_SECONDS = 60.0


async def request(docker_host: str, method: str, path: str, params: dict | None = None, *,
                  body: dict | None = None, timeout: float = REQUEST_TIMEOUT_SECONDS) -> EngineAnswer:
    """One small engine API call (inspect, resize, kill, remove, exec create) on the event loop:
    no thread, no SDK.

    The console connect makes a few of these per viewer; through the SDK each was a thread from a
    pool of (cores + 4) and a couple of milliseconds of ``requests`` machinery, which a class
    connecting at once queued behind. A call past its deadline closes its connection, so a wedged
    container holds no thread either. Any status is returned: the caller decides what a 404 means.
    Raises :class:`EngineUnavailable` when the engine does not answer (no socket, refused, the
    connection dropped before a whole answer) and :class:`EngineTimeout` when it has not answered
    within ``timeout`` (the engine may be fine and the object the call is about stuck)."""
    query = f"?{urlencode(params)}" if params else ""
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} /{API_VERSION}{path}{query} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
            + ("Content-Type: application/json\r\n" if body is not None else "")
            + f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    try:
        return await asyncio.wait_for(_exchange(docker_host, head), timeout)
    except asyncio.TimeoutError:
        raise EngineTimeout(f"the Docker engine at {docker_host} did not answer {method} {path} "
                            f"within {timeout:g}s") from None
    except (FileNotFoundError, ConnectionError, PermissionError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError, ValueError) as exc:
        raise EngineUnavailable(engine_down_message(docker_host, getattr(exc, "strerror", None) or exc)) from exc


async def _exchange(docker_host: str, head: bytes) -> EngineAnswer:
    reader, writer = await asyncio.open_unix_connection(unix_path(docker_host), limit=1 << 20)
    try:
        writer.write(head)
        await writer.drain()
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        status = int(parts[1])  # ValueError for a garbled status line: treated as no answer
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if status in (204, 304) or status < 200:
            body = b""
        elif b"content-length" in headers:
            body = await reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            body = await _read_chunked(reader)
        else:
            body = await reader.read()  # Connection: close, so the body ends with the stream
        return EngineAnswer(status, body)
    finally:
        writer.close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _read_error_body(reader: asyncio.StreamReader, head: bytes) -> str:
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1].strip() or 0)
    try:
        raw = await asyncio.wait_for(reader.readexactly(min(length, 65536)), 5) if length else b""
    except (asyncio.IncompleteReadError, asyncio.TimeoutError):
        raw = b""
    try:
        return json.loads(raw).get("message", raw.decode(errors="replace"))
    except (ValueError, AttributeError):
        return raw.decode(errors="replace").strip() or "no detail"


async def read_multiplexed(stream: HijackedStream, max_output: int) -> tuple[bytes, bool]:
    """Read a non-TTY exec stream to its end.

    Keeps the first ``max_output`` bytes of stdout and stderr interleaved; drains the rest so the
    process is never blocked on a full pipe. Returns (output, truncated).
    """
    out = bytearray()
    truncated = False
    try:
        async for _kind, chunk in read_frames(stream.reader):
            room = max_output - len(out)
            if room > 0:
                out += chunk[:room]
            if len(chunk) > room:
                truncated = True
    except FrameCutOff:
        pass
    return bytes(out), truncated
