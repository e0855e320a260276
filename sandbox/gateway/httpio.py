"""Just enough HTTP/1.1 on asyncio streams for the gateway: heads, bodies (length, chunked or
to EOF), streaming relays and hijacked upgrades.

Strict on what it reads, because what it reads is judged here and then sent to an engine that
parses HTTP its own way (Go's net/http). Where two parsers can disagree about where a line, a
header or a request ends, a learner can hide a second request inside the first one (request
smuggling). So a head is refused (400) unless it is unambiguous for every parser:

* every line ends in CRLF; a bare LF or a bare CR anywhere is refused (Go ends a line at a bare
  LF: ``User-Agent: x\n\nPOST ...`` would be two requests there and one here);
* field names are RFC 9110 tokens; field values hold no control character but HTAB (no NUL,
  no CR, no LF, no DEL); no obs-fold (a line starting with SP or HTAB); no space before the colon;
* the request line is ``METHOD SP target SP HTTP/1.0|1.1`` with a visible-ASCII target;
* at most ``MAX_HEAD`` bytes and ``MAX_FIELDS`` fields; exactly one ``Content-Length`` of ASCII
  digits, or one ``Transfer-Encoding: chunked``, never both.

Requests are then parsed by h11 (:func:`parse_request`), which adds its own checks (one Host,
the request line's grammar); h11 alone is not enough: it accepts bare LF line ends, obs-fold,
control characters in values and both length headers at once, hence the strict pass first.

The gateway never forwards a head it read: it writes its own (see ``proxy.LearnerProxy.forward``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import socket
from typing import NamedTuple

import h11

MAX_HEAD = 64 * 1024
MAX_FIELDS = 100  # the docker CLI sends fewer than ten
MAX_LENGTH_DIGITS = 18  # a Content-Length past this is no upload a classroom takes
MAX_BLANK_LINES = 2  # empty lines tolerated before a request line (RFC 9112 2.2)
COPY_CHUNK = 256 * 1024  # the most read and relayed in one pass
DIRECT_BUFFER = 256 * 1024  # uploads relayed on the sockets: one reused buffer (64 KiB and 1 MiB were slower)
ENGINE_SEND_BUFFER = 1024 * 1024
MAX_CHUNK_LINE = 4096  # a chunk-size line (with extensions) longer than this is refused


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


@dataclasses.dataclass
class Head:
    start: str
    headers: list[tuple[str, str]]
    raw: bytes = b""  # the head as read, CRLF-terminated lines (checked by ``read_head``)

    def get(self, name: str, default: str = "") -> str:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB
_REQUEST_LINE = re.compile(rb"(?P<method>[-!#$%&'*+.^_`|~0-9A-Za-z]+) (?P<target>[\x21-\x7e]+) HTTP/1\.[01]")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] [1-5][0-9][0-9](?: [\t \x21-\x7e\x80-\xff]*)?")
_LENGTH = re.compile(r"[0-9]{1,%d}" % MAX_LENGTH_DIGITS)


def _field(line: bytes) -> tuple[str, str]:
    """One ``name: value`` line (without its CRLF), strictly."""
    if line[:1] in (b" ", b"\t"):
        raise HttpError(400, "folded header lines (obs-fold) are not allowed")
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.fullmatch(name):
        raise HttpError(400, "malformed header name")
    value = value.strip(b" \t")
    if _FORBIDDEN_IN_VALUE.search(value):
        raise HttpError(400, "control characters in a header value are not allowed")
    return name.decode("ascii"), value.decode("latin-1")


async def read_head(reader: asyncio.StreamReader, first: bytes = b"") -> Head | None:
    """The next message head (a request's or an answer's), or None at a clean end of stream.

    ``first`` is what the caller already took from the stream (the byte that ended an idle wait).
    Which kind of start line is right is checked by ``parse_request`` and ``status_of``."""
    lines: list[bytes] = []
    size = 0
    blanks = 0
    pending = first
    while True:
        if pending.endswith(b"\n"):
            line, pending = pending, b""
        else:
            try:
                line = pending + await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if not lines and not (pending + exc.partial).strip(b"\r\n"):
                    return None
                raise HttpError(400, "incomplete message head") from None
            except asyncio.LimitOverrunError:
                raise HttpError(431, "message head too large") from None
            pending = b""
        size += len(line)
        if size > MAX_HEAD:
            raise HttpError(431, "message head too large")
        if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
            raise HttpError(400, "every line of a message head must end in CRLF (no bare LF or CR)")
        line = line[:-2]
        if not lines:
            if not line:
                blanks += 1
                if blanks > MAX_BLANK_LINES:
                    raise HttpError(400, "empty lines instead of a request")
                continue
            if not _REQUEST_LINE.fullmatch(line) and not _STATUS_LINE.fullmatch(line):
                raise HttpError(400, "malformed request line")
            lines.append(line)
            continue
        if not line:
            break
        if len(lines) > MAX_FIELDS:
            raise HttpError(431, f"more than {MAX_FIELDS} header fields")
        lines.append(line)
    raw = b"\r\n".join(lines) + b"\r\n\r\n"
    return Head(lines[0].decode("latin-1"), [_field(line) for line in lines[1:]], raw)


async def read_response_head(reader: asyncio.StreamReader, who: str = "the engine") -> Head:
    """An upstream's answer head: a malformed or missing one is a 502, the upstream's fault."""
    try:
        head = await read_head(reader)
    except HttpError as exc:
        raise HttpError(502, f"{who} sent a malformed response ({exc.message})") from None
    if head is None:
        raise HttpError(502, f"{who} closed the connection")
    status_of(head)
    return head


@dataclasses.dataclass(frozen=True)
class RequestHead:
    """A learner's request head, parsed and checked: what the gateway acts on."""

    method: str
    target: str
    framing: tuple[str, int]
    close: bool  # the client asked to close after this answer (or spoke HTTP/1.0 without keep-alive)
    upgrade: bool  # Connection: Upgrade with Upgrade: tcp (attach and exec hijack the connection)
    head: Head

    def get(self, name: str, default: str = "") -> str:
        return self.head.get(name, default)

    def all(self, name: str) -> list[str]:
        return self.head.all(name)


def parse_request(head: Head) -> RequestHead:
    """Check a request head (read by ``read_head``) with h11 and the framing rules; HttpError 400."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    conn.receive_data(head.raw)
    try:
        event = conn.next_event()
    except h11.ProtocolError as exc:
        raise HttpError(400, f"malformed request: {exc}") from None
    if not isinstance(event, h11.Request):
        raise HttpError(400, "malformed request")
    framing = body_framing(head)
    if framing[0] == "chunked" and event.http_version != b"1.1":
        raise HttpError(400, "Transfer-Encoding needs HTTP/1.1")
    tokens = {t.strip().lower() for v in head.all("connection") for t in v.split(",")}
    upgrades = head.all("upgrade")
    upgrade = "upgrade" in tokens and len(upgrades) == 1 and upgrades[0].lower() == "tcp"
    close = "close" in tokens or (event.http_version == b"1.0" and "keep-alive" not in tokens)
    return RequestHead(event.method.decode("ascii"), event.target.decode("ascii"), framing, close, upgrade, head)


def body_framing(head: Head) -> tuple[str, int]:
    """('length', n), ('chunked', 0) or ('none', 0) for a request; strict."""
    lengths = head.all("content-length")
    encodings = head.all("transfer-encoding")
    if lengths and encodings:
        raise HttpError(400, "both Content-Length and Transfer-Encoding")
    if encodings:
        if len(encodings) != 1 or encodings[0].lower() != "chunked":
            raise HttpError(400, "unsupported Transfer-Encoding")
        return "chunked", 0
    if lengths:
        if len(lengths) != 1 or not _LENGTH.fullmatch(lengths[0]):
            raise HttpError(400, "invalid Content-Length")
        return "length", int(lengths[0])
    return "none", 0


async def read_chunk_size(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    line = await reader.readuntil(b"\r\n")
    return parse_chunk_size(line[:-2]), line


async def read_body(reader: asyncio.StreamReader, framing: tuple[str, int], limit: int) -> bytes:
    """Read a whole body (JSON endpoints); more than ``limit`` bytes is an error."""
    kind, length = framing
    if kind == "length":
        if length > limit:
            raise HttpError(413, "request body too large")
        try:
            return await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise HttpError(400, "the body is shorter than its Content-Length") from None
    if kind == "chunked":
        out = bytearray()
        while True:
            size, _ = await read_chunk_size(reader)
            if size == 0:
                await _skip_trailers(reader)
                return bytes(out)
            if len(out) + size > limit:
                raise HttpError(413, "request body too large")
            out += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise HttpError(400, "malformed chunk")
    return b""


STALLED = "the upload stalled (no data for too long); the classroom gateway closed the connection"


async def within_stall(reading, stall: float | None):
    """Await ``reading`` (bytes from a learner's upload); HttpError 408 when none came within
    ``stall`` seconds, so a client that stops mid-body does not hold its connection for ever."""
    if stall is None:
        return await reading
    try:
        async with asyncio.timeout(stall):
            return await reading
    except TimeoutError:
        raise HttpError(408, STALLED) from None


class StallWatch:
    """``within_stall`` for a hot loop of reads: one timer per ``stall`` seconds instead of one per
    read (a timeout around every read of a 100 MB `docker cp` cost ~15% more gateway CPU). Call
    ``waiting()`` before a read and ``got()`` after; only time spent waiting for the learner counts,
    not time spent sending on. When a wait passes ``stall`` the task is cancelled, and ``stalled()``
    (in its ``except CancelledError``) says so and takes the cancellation back."""

    def __init__(self, stall: float | None):
        self.stall = stall
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.since: float | None = None
        self.fired = False
        self.handle = self.loop.call_later(stall, self._check) if stall is not None else None

    def waiting(self) -> None:
        if self.handle is not None:
            self.since = self.loop.time()

    def got(self) -> None:
        self.since = None

    def _check(self) -> None:
        waited = self.loop.time() - self.since if self.since is not None else 0.0
        if waited >= self.stall:
            self.fired = True
            self.task.cancel()
        else:
            self.handle = self.loop.call_later(self.stall - waited, self._check)

    def stalled(self) -> bool:
        if self.fired:
            self.fired = False
            self.task.uncancel()
            return True
        return False

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


async def spool_body(reader: asyncio.StreamReader, framing: tuple[str, int], limit: int, into,
                     *, stall: float | None = None) -> int:
    """Read a whole body into the file ``into`` as it comes (a build context: up to ``limit``
    bytes, too big to hold in memory); returns its length. ``stall``: see ``within_stall``."""
    kind, length = framing
    total = 0

    async def take(count: int) -> None:
        nonlocal total
        total += count
        if total > limit:
            raise HttpError(413, f"the upload is larger than the classroom limit of {limit // (1024 * 1024)} MiB")
        while count:
            block = await within_stall(reader.read(min(count, COPY_CHUNK)), stall)
            if not block:
                raise HttpError(400, "the body ended early")
            into.write(block)
            count -= len(block)

    if kind == "length":
        await take(length)
    elif kind == "chunked":
        while True:
            size, _ = await within_stall(read_chunk_size(reader), stall)
            if size == 0:
                await within_stall(_skip_trailers(reader), stall)
                break
            await take(size)
            if await within_stall(reader.readexactly(2), stall) != b"\r\n":
                raise HttpError(400, "malformed chunk")
    into.seek(0)
    return total


async def _skip_trailers(reader: asyncio.StreamReader) -> None:
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            return


class Relayed(NamedTuple):
    """What ``copy_body`` moved: payload bytes, and bytes it read past the end of the body.

    ``surplus`` is non-empty only when a client pipelined its next request behind a chunked body;
    those bytes are gone from the reader, so the connection must close after this answer."""

    total: int
    surplus: bytes = b""


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def parse_chunk_size(line: bytes) -> int:
    """The size in a chunk-size line (without its CRLF); extensions are ignored. Strict: hex only."""
    size_text = line.split(b";", 1)[0].strip(b" \t")
    if not _CHUNK_SIZE.fullmatch(size_text):
        raise HttpError(400, "invalid chunk size")
    return int(size_text, 16)


async def copy_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framing: tuple[str, int],
                    limit: int | None = None, *, stall: float | None = None) -> Relayed:
    """Relay a body as it comes, keeping its framing (chunk boundaries may move). ``stall``: see
    ``within_stall``."""
    kind, length = framing
    if kind == "length":
        if limit is not None and length > limit:
            raise HttpError(413, f"the upload is larger than the classroom limit of {limit // (1024 * 1024)} MiB")
        remaining = length
        while remaining:
            chunk = await within_stall(reader.read(min(remaining, COPY_CHUNK)), stall)
            if not chunk:
                raise HttpError(400, "the body is shorter than its Content-Length")
            writer.write(chunk)
            remaining -= len(chunk)
            if writer.transport.get_write_buffer_size() > COPY_CHUNK:
                await writer.drain()
        await writer.drain()
        return Relayed(length)
    if kind == "chunked":
        relay = ChunkedRelay(limit)
        while not relay.done:
            block = await within_stall(reader.read(COPY_CHUNK), stall)
            if not block:
                raise asyncio.IncompleteReadError(relay.pending, None)
            for piece in relay.feed(block):
                writer.write(piece)
            if writer.transport.get_write_buffer_size() > COPY_CHUNK:
                await writer.drain()
        await writer.drain()
        return Relayed(relay.total, relay.surplus)
    return Relayed(0)


class ChunkedRelay:
    """A chunked body, checked as it passes: ``feed`` takes bytes as they arrive and returns the
    pieces to send on, in order. Every size line is parsed strictly and counted against ``limit``
    before its data goes out; the CRLF after each chunk's data is checked; trailers are dropped.

    What goes out is canonical framing: a size line already written as ``%x`` is passed on as it
    came, with its data, as slices of the fed buffer (no copy); any other line is rewritten. The
    pieces are views of what was fed: send them before feeding (or reusing) that buffer again."""

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self.total = 0
        self.done = False
        self.surplus = b""  # bytes fed after the end of the body
        self.pending = b""  # an unfinished size line or CRLF, kept for the next feed
        self._remaining = 0  # payload bytes still due in the current chunk
        self._state = "size"  # size -> data -> crlf -> size ... -> trailers
        self._trailer_bytes = 0

    def feed(self, block) -> list:
        if self.done:
            self.surplus += bytes(block)
            return []
        data = self.pending + bytes(block) if self.pending else block
        view = memoryview(data)
        out: list = []
        pos, end = 0, len(view)
        start = 0  # the checked bytes from here to ``pos`` go out verbatim
        state, remaining = self._state, self._remaining
        while pos < end:
            if state == "data":
                n = min(remaining, end - pos)
                pos += n
                remaining -= n
                if not remaining:
                    state = "crlf"
                continue
            if state == "crlf":
                if end - pos < 2:
                    break
                if view[pos:pos + 2] != b"\r\n":
                    raise HttpError(400, "malformed chunk")
                pos += 2
                state = "size"
                continue
            window = bytes(view[pos:pos + 64])  # size lines are short: copy 64 bytes, not 4 KiB
            eol = window.find(b"\r\n")
            if eol < 0 and end - pos > 64:
                window = bytes(view[pos:pos + MAX_CHUNK_LINE + 2])
                eol = window.find(b"\r\n")
            if eol < 0:
                if len(window) > MAX_CHUNK_LINE:
                    raise HttpError(400, "chunk header line too long")
                break
            line = window[:eol]
            line_end = pos + eol + 2
            if state == "trailers":
                pos = start = line_end
                self._trailer_bytes += eol + 2
                if self._trailer_bytes > MAX_HEAD:
                    raise HttpError(431, "chunked trailers too large")
                if not line:
                    self.done = True
                    break
                continue
            size = parse_chunk_size(line)
            self.total += size
            if self.limit is not None and self.total > self.limit:
                raise HttpError(413, f"the upload is larger than the classroom limit of {self.limit // (1024 * 1024)} MiB")
            if not size:  # the last chunk: what follows (trailers) is not passed on
                if pos > start:
                    out.append(view[start:pos])
                pos = start = line_end
                state = "trailers"
                continue
            if line != b"%x" % size:  # extensions, upper case, leading zeros: rewrite the line
                if pos > start:
                    out.append(view[start:pos])
                out.append(b"%x\r\n" % size)
                start = line_end
            pos = line_end
            remaining, state = size, "data"
        if state != "trailers" and pos > start:
            out.append(view[start:pos])
        self._state, self._remaining = state, remaining
        if self.done:
            out.append(b"0\r\n\r\n")
            self.surplus, self.pending = bytes(view[pos:]), b""
        else:
            self.pending = bytes(view[pos:])
        return out


async def relay_body_direct(reader: asyncio.StreamReader, source: asyncio.StreamWriter,
                            dest: asyncio.StreamWriter, framing: tuple[str, int], limit: int | None = None,
                            *, upload: bool = True, stall: float | None = None) -> Relayed | None:
    """``copy_body`` for a large body (docker cp either way, build context), on the sockets.

    ``reader``/``source`` are the two halves of the connection the body comes from, ``dest``
    the one it goes to. Why: through StreamReader and the transport's write buffer every byte is
    copied four or five times in Python (~110 ms of CPU per 100 MB on these machines, a third of
    a direct `docker cp`). Here the source socket is read into one reused buffer and the checked
    slices are sent straight to the destination socket: the kernel's copies only. The checks are
    ``ChunkedRelay``'s (or the length), the same as ``copy_body``. An ``upload`` whose engine
    goes away is still read to its end (the engine's answer says why); an answer whose client
    goes away ends with ConnectionError. Returns None, having read nothing, when it cannot take
    over the sockets (then use ``copy_body``). ``stall``: see ``within_stall``."""
    buffered = getattr(reader, "_buffer", None)  # CPython's StreamReader keeps unread bytes here
    source_sock = source.get_extra_info("socket")
    dest_sock = dest.get_extra_info("socket")
    if (not isinstance(buffered, bytearray) or source_sock is None or dest_sock is None
            or reader.exception() is not None or dest.transport.get_write_buffer_size()
            or dest.is_closing() or framing[0] not in ("length", "chunked")):
        return None
    kind, length = framing
    if kind == "length" and limit is not None and length > limit:
        raise HttpError(413, f"the upload is larger than the classroom limit of {limit // (1024 * 1024)} MiB")
    loop = asyncio.get_running_loop()
    # Take what the reader holds (no await happens while it holds data), then stop the transport
    # reading and read from a duplicate of its socket: asyncio refuses sock_* calls on a socket
    # a transport owns, and the transports must keep the connections for what follows.
    first = await reader.read(len(buffered)) if buffered else b""
    source.transport.pause_reading()
    eof = reader.at_eof()
    inbound = socket.socket(fileno=os.dup(source_sock.fileno()))
    outbound = socket.socket(fileno=os.dup(dest_sock.fileno()))
    inbound.setblocking(False)
    outbound.setblocking(False)
    # A unix socket's send buffer bounds what is in flight: the default 208 KiB meant a wait for
    # the engine every buffer or so (1 MiB: ~20% less gateway CPU per upload).
    with contextlib.suppress(OSError):
        outbound.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, ENGINE_SEND_BUFFER)
    dest_gone = False

    async def send(pieces) -> None:
        nonlocal dest_gone
        for piece in pieces:
            if dest_gone:
                return
            try:
                await loop.sock_sendall(outbound, piece)
            except OSError as exc:
                if not upload:
                    raise ConnectionResetError("the client went away") from exc
                dest_gone = True  # keep reading the upload; the engine's answer says why

    buf = bytearray(DIRECT_BUFFER)
    view = memoryview(buf)
    watch = StallWatch(stall)
    try:
        if kind == "length":
            extra = first[length:]
            await send([first[:length]])
            remaining = length - min(length, len(first))
            while remaining:
                watch.waiting()
                n = 0 if eof else await loop.sock_recv_into(inbound, view[:min(remaining, len(view))])
                watch.got()
                if not n:
                    raise HttpError(400, "the body is shorter than its Content-Length")
                await send([view[:n]])
                remaining -= n
            return Relayed(length, bytes(extra))
        relay = ChunkedRelay(limit)
        if first:
            await send(relay.feed(first))
        while not relay.done:
            watch.waiting()
            n = 0 if eof else await loop.sock_recv_into(inbound, view)
            watch.got()
            if not n:
                raise asyncio.IncompleteReadError(relay.pending, None)
            await send(relay.feed(view[:n]))
        return Relayed(relay.total, relay.surplus)
    except asyncio.CancelledError:
        if watch.stalled():
            raise HttpError(408, STALLED) from None
        raise
    finally:
        watch.close()
        view.release()
        inbound.close()
        outbound.close()
        if not source.is_closing():
            source.transport.resume_reading()


def response_framing(head: Head, method: str) -> tuple[str, int]:
    """How an answer's body is framed, read as strictly as a request's: an answer with both
    length headers, two lengths, or a length that is not digits is a 502, never guessed at."""
    status = status_of(head)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return "none", 0
    try:
        framing = body_framing(head)
    except HttpError as exc:
        raise HttpError(502, f"the engine sent a malformed response ({exc.message})") from None
    return ("eof", 0) if framing[0] == "none" else framing


def status_of(head: Head) -> int:
    if not _STATUS_LINE.fullmatch(head.start.encode("latin-1")):
        raise HttpError(502, "the engine sent a malformed response")
    return int(head.start[9:12])


async def read_response_body(reader: asyncio.StreamReader, framing: tuple[str, int], limit: int = 64 << 20) -> bytes:
    kind, length = framing
    if kind == "eof":
        return await reader.read(limit)
    return await read_body(reader, framing, limit)


async def copy_to_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        chunk = await reader.read(COPY_CHUNK)
        if not chunk:
            await writer.drain()
            return
        writer.write(chunk)
        if writer.transport.get_write_buffer_size() > COPY_CHUNK:
            await writer.drain()


def encode_head(start: str, headers: list[tuple[str, str]]) -> bytes:
    return (start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")


def json_response(status: int, payload: object, *, close: bool = False) -> bytes:
    body = json.dumps(payload).encode()
    reason = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
              404: "Not Found", 409: "Conflict", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
              500: "Internal Server Error", 502: "Bad Gateway"}.get(status, "Error")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Api-Version", "1.41")]
    if close:
        headers.append(("Connection", "close"))
    return encode_head(f"HTTP/1.1 {status} {reason}", headers) + body


def error_response(status: int, message: str, *, close: bool = False) -> bytes:
    return json_response(status, {"message": message}, close=close)
