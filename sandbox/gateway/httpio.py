"""Just enough HTTP/1.1 on asyncio streams for the gateway: heads, bodies (length, chunked or
to EOF), streaming relays and hijacked upgrades. Strict on what it reads: a request with both
``Content-Length`` and ``Transfer-Encoding``, or a malformed length, is refused (no smuggling)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

MAX_HEAD = 64 * 1024
COPY_CHUNK = 256 * 1024


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


@dataclasses.dataclass
class Head:
    start: str
    headers: list[tuple[str, str]]

    def get(self, name: str, default: str = "") -> str:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """The next message head, or None at a clean end of stream."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError(400, "incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    if len(raw) > MAX_HEAD:
        raise HttpError(431, "request head too large")
    lines = raw[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line or line[0] in " \t" or ":" not in line:
            raise HttpError(400, "malformed header line")
        key, value = line.split(":", 1)
        if key != key.strip() or not key:
            raise HttpError(400, "malformed header name")
        headers.append((key, value.strip()))
    return Head(lines[0], headers)


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
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            raise HttpError(400, "invalid Content-Length")
        return "length", int(lengths[0])
    return "none", 0


async def read_chunk_size(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    line = await reader.readuntil(b"\r\n")
    size_text = line[:-2].split(b";", 1)[0].strip()
    try:
        size = int(size_text, 16)
    except ValueError:
        raise HttpError(400, "invalid chunk size") from None
    if size < 0:
        raise HttpError(400, "invalid chunk size")
    return size, line


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


async def _skip_trailers(reader: asyncio.StreamReader) -> None:
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            return


async def copy_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framing: tuple[str, int],
                    limit: int | None = None) -> int:
    """Relay a body as it comes, keeping its framing; returns the bytes of payload relayed."""
    kind, length = framing
    total = 0
    if kind == "length":
        if limit is not None and length > limit:
            raise HttpError(413, f"the upload is larger than the classroom limit of {limit // (1024 * 1024)} MiB")
        remaining = length
        while remaining:
            chunk = await reader.read(min(remaining, COPY_CHUNK))
            if not chunk:
                raise HttpError(400, "the body is shorter than its Content-Length")
            writer.write(chunk)
            remaining -= len(chunk)
            total += len(chunk)
            if writer.transport.get_write_buffer_size() > COPY_CHUNK:
                await writer.drain()
        await writer.drain()
        return total
    if kind == "chunked":
        while True:
            size, line = await read_chunk_size(reader)
            total += size
            if limit is not None and total > limit:
                raise HttpError(413, f"the upload is larger than the classroom limit of {limit // (1024 * 1024)} MiB")
            if size == 0:
                await _skip_trailers(reader)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return total
            # One read and one write per chunk: the CLI sends many small chunks (docker cp, build).
            data = await reader.readexactly(size + 2)
            if data[-2:] != b"\r\n":
                raise HttpError(400, "malformed chunk")
            writer.write(b"%x\r\n" % size + data)
            if writer.transport.get_write_buffer_size() > 4 * COPY_CHUNK:
                await writer.drain()
    return 0


def response_framing(head: Head, method: str) -> tuple[str, int]:
    status = status_of(head)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return "none", 0
    if head.get("transfer-encoding").lower() == "chunked":
        return "chunked", 0
    length = head.get("content-length")
    if length.isdigit():
        return "length", int(length)
    return "eof", 0


def status_of(head: Head) -> int:
    parts = head.start.split(" ", 2)
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        raise HttpError(502, "the engine sent a malformed response") from None


async def read_response_body(reader: asyncio.StreamReader, framing: tuple[str, int], limit: int = 64 << 20) -> bytes:
    kind, length = framing
    if kind == "eof":
        return await reader.read(limit)
    return await read_body(reader, framing, limit)


async def copy_to_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        chunk = await reader.read(COPY_CHUNK)
        if not chunk:
            return
        writer.write(chunk)
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
