"""The gateway's body relay (sandbox/gateway/httpio.py): chunked bodies are parsed strictly,
re-framed, capped, and never read past their end unnoticed. The engine-level tests (docker cp,
build and pull through the gateway) are in tests/integration/test_gateway_*.py."""

from __future__ import annotations

import asyncio
import random

import pytest

from sandbox.gateway import httpio
from sandbox.gateway.httpio import HttpError


class CollectingWriter:
    """Just the StreamWriter surface copy_body uses; keeps what was written."""

    class _Transport:
        def get_write_buffer_size(self) -> int:
            return 0

    def __init__(self):
        self.data = bytearray()
        self.transport = self._Transport()

    def write(self, data) -> None:
        self.data += data

    async def drain(self) -> None:
        pass


def chunked(payload: bytes, sizes: list[int]) -> bytes:
    out, pos = bytearray(), 0
    for size in sizes:
        piece = payload[pos:pos + size]
        pos += len(piece)
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    assert pos == len(payload)
    return bytes(out + b"0\r\n\r\n")


async def relay(wire: bytes, pieces: list[int] | None = None, limit: int | None = None):
    """Feed ``wire`` in pieces (while the relay runs), relay it, decode what came out."""
    reader = asyncio.StreamReader()
    writer = CollectingWriter()

    async def feed():
        pos = 0
        for size in pieces or [len(wire)]:
            reader.feed_data(wire[pos:pos + size])
            pos += size
            await asyncio.sleep(0)
        reader.feed_data(wire[pos:])
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    try:
        result = await httpio.copy_body(reader, writer, ("chunked", 0), limit)
    finally:
        await feeder
    out = asyncio.StreamReader()
    out.feed_data(bytes(writer.data))
    out.feed_eof()
    decoded = await httpio.read_body(out, ("chunked", 0), 1 << 30)
    assert await out.read() == b"", "the relay wrote past its own last chunk"
    return result, decoded


async def test_chunked_body_survives_any_split():
    rng = random.Random(7)
    payload = rng.randbytes(300_000)
    sizes = [32768] * 9 + [5, 1, 4205]
    sizes.append(len(payload) - sum(sizes))
    wire = chunked(payload, sizes)
    for _ in range(20):
        pieces = [rng.randint(1, 40_000) for _ in range(30)]
        result, decoded = await relay(wire, pieces)
        assert decoded == payload
        assert result.total == len(payload) and result.surplus == b""


async def test_chunked_body_fed_one_byte_at_a_time():
    payload = b"hello, classroom" * 10
    wire = chunked(payload, [3, 50, 1, len(payload) - 54])
    result, decoded = await relay(wire, [1] * len(wire))
    assert decoded == payload and result.total == len(payload)


async def test_bytes_after_the_body_are_reported_not_relayed():
    wire = chunked(b"abc", [3]) + b"GET /_ping HTTP/1.1\r\n\r\n"
    result, decoded = await relay(wire)
    assert decoded == b"abc"
    assert result.surplus == b"GET /_ping HTTP/1.1\r\n\r\n"


async def test_trailers_are_dropped():
    result, decoded = await relay(b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n")
    assert decoded == b"abc" and result.surplus == b""


async def test_chunk_extensions_are_ignored():
    result, decoded = await relay(b"3;name=value\r\nabc\r\n0\r\n\r\n")
    assert decoded == b"abc"


@pytest.mark.parametrize("size_line", [b"0x3", b"+3", b"-3", b"0_3", b"zz", b"", b"1" * 17])
async def test_malformed_chunk_sizes_are_refused(size_line):
    with pytest.raises(HttpError) as exc:
        await relay(size_line + b"\r\nabc\r\n0\r\n\r\n")
    assert exc.value.status == 400


async def test_chunk_without_its_crlf_is_refused():
    with pytest.raises(HttpError) as exc:
        await relay(b"3\r\nabcX\r\n0\r\n\r\n")
    assert exc.value.status == 400


async def test_endless_chunk_header_is_refused():
    with pytest.raises(HttpError) as exc:
        await relay(b"3;" + b"x" * 10_000, [100] * 100)
    assert exc.value.status == 400


async def test_upload_over_the_limit_is_refused_before_its_data():
    with pytest.raises(HttpError) as exc:
        await relay(chunked(b"x" * 2000, [1000, 1000]), limit=1500)
    assert exc.value.status == 413


async def test_body_cut_short_is_an_incomplete_read():
    with pytest.raises(asyncio.IncompleteReadError):
        await relay(b"10\r\nabc")


async def test_length_body_is_relayed_exactly():
    reader = asyncio.StreamReader()
    reader.feed_data(b"0123456789NEXT")
    reader.feed_eof()
    writer = CollectingWriter()
    result = await httpio.copy_body(reader, writer, ("length", 10))
    assert bytes(writer.data) == b"0123456789" and result.total == 10
    assert await reader.read() == b"NEXT"


async def test_what_goes_out_is_canonical_framing():
    """Size lines are passed on only when already canonical; extensions, case, zeros, trailers go."""
    reader = asyncio.StreamReader()
    reader.feed_data(b"3\r\nabc\r\n0A;x=y\r\n0123456789\r\n002\r\nzz\r\n0\r\nX-T: 1\r\n\r\n")
    reader.feed_eof()
    writer = CollectingWriter()
    result = await httpio.copy_body(reader, writer, ("chunked", 0))
    assert bytes(writer.data) == b"3\r\nabc\r\na\r\n0123456789\r\n2\r\nzz\r\n0\r\n\r\n"
    assert result.total == 15


# -- request heads: strict, so nothing the engine (Go) reads as two requests passes as one here --
async def head_of(wire: bytes) -> httpio.RequestHead:
    reader = asyncio.StreamReader(limit=1 << 20)
    reader.feed_data(wire)
    reader.feed_eof()
    head = await httpio.read_head(reader)
    assert head is not None
    return httpio.parse_request(head)


async def test_a_plain_request_head_is_read():
    req = await head_of(b"POST /v1.41/containers/create?name=a HTTP/1.1\r\nHost: docker\r\n"
                        b"User-Agent: Docker-Client/24\tlinux\r\nContent-Length: 12\r\n\r\n{}")
    assert (req.method, req.target, req.framing, req.close, req.upgrade) == (
        "POST", "/v1.41/containers/create?name=a", ("length", 12), False, False)
    assert req.get("user-agent") == "Docker-Client/24\tlinux"  # HTAB is allowed inside a value


async def test_upgrade_and_close_are_connection_tokens():
    req = await head_of(b"POST /exec/x/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    assert req.upgrade and not req.close
    req = await head_of(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: keep-alive, close\r\n\r\n")
    assert req.close and not req.upgrade
    req = await head_of(b"GET /_ping HTTP/1.0\r\n\r\n")
    assert req.close


SMUGGLED = (b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\n\r\n{}")


@pytest.mark.parametrize("wire", [
    # A bare LF ends a line for Go: a second request hidden in a header value.
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nUser-Agent: x\n\n" + SMUGGLED + b"\r\n\r\n",
    b"GET /_ping HTTP/1.1\nHost: d\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nAccept: a\rb\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nAccept: a\x00b\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nAccept: a\x1bb\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nAccept: a\x7fb\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nAccept: a\r\n b\r\n\r\n",  # obs-fold
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nAccept : a\r\n\r\n",  # space before the colon
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nAcc\tept: a\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\nHost: d\r\nnot a header\r\n\r\n",
    b"GET /_p\x01ing HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET  /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
    b"GET /_ping HTTP/2.0\r\nHost: d\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    b"GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nHost: d\r\n\r\n",  # an answer is not a request
])
async def test_ambiguous_heads_are_refused(wire):
    with pytest.raises(HttpError) as exc:
        await head_of(wire)
    assert exc.value.status == 400


@pytest.mark.parametrize("lengths", [
    [b"5", b"5"], [b"5, 5"], [b"+5"], [b"-1"], [b"0x5"], [b"\xb2"], ["\u0665".encode()], [b"5 5"], [b""],
    [b"1" * 19],
])
async def test_content_length_must_be_one_run_of_ascii_digits(lengths):
    wire = b"POST /x HTTP/1.1\r\nHost: d\r\n" + b"".join(b"Content-Length: %s\r\n" % v for v in lengths) + b"\r\n"
    with pytest.raises(HttpError) as exc:
        await head_of(wire)
    assert exc.value.status == 400


@pytest.mark.parametrize("headers", [
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Transfer-Encoding: identity\r\n",
])
async def test_body_framing_is_never_ambiguous(headers):
    with pytest.raises(HttpError) as exc:
        await head_of(b"POST /x HTTP/1.1\r\nHost: d\r\n" + headers + b"\r\n")
    assert exc.value.status == 400


async def test_head_size_and_field_count_are_bounded():
    many = b"".join(b"X-%d: v\r\n" % i for i in range(httpio.MAX_FIELDS + 1))
    with pytest.raises(HttpError) as exc:
        await head_of(b"GET / HTTP/1.1\r\nHost: d\r\n" + many + b"\r\n")
    assert exc.value.status == 431
    with pytest.raises(HttpError) as exc:
        await head_of(b"GET / HTTP/1.1\r\nHost: d\r\nX: " + b"v" * httpio.MAX_HEAD + b"\r\n\r\n")
    assert exc.value.status == 431


async def test_a_head_cut_short_is_refused_and_an_empty_stream_is_the_end():
    with pytest.raises(HttpError):
        await head_of(b"GET / HTTP/1.1\r\nHost: d\r\n")
    reader = asyncio.StreamReader()
    reader.feed_data(b"\r\n")
    reader.feed_eof()
    assert await httpio.read_head(reader) is None


@pytest.mark.parametrize("headers", [
    [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
    [("Content-Length", "5"), ("Content-Length", "6")],
    [("Content-Length", "five")],
])
def test_an_engine_answer_with_ambiguous_framing_is_a_502(headers):
    with pytest.raises(HttpError) as exc:
        httpio.response_framing(httpio.Head("HTTP/1.1 200 OK", headers), "GET")
    assert exc.value.status == 502
