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
