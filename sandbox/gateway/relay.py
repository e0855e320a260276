"""Bytes relayed between a learner's connection and the engine, once the gateway has judged the
request: a hijacked stream both ways (attach, exec, ``run -it``), a chunked stream of JSON lines
rewritten line by line (``docker events``), and the last words to a client whose upload was refused.
"""

from __future__ import annotations

import asyncio
import json
import logging

from . import httpio, policy
from .httpio import HttpError

log = logging.getLogger(__name__)


async def linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float = 2.0) -> None:
    """After refusing an upload mid-stream: stop sending, and swallow what the client is still
    writing for a moment, so it reads our message instead of dying of a broken pipe."""
    try:
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

        async def swallow():
            while await reader.read(httpio.COPY_CHUNK):
                pass

        await asyncio.wait_for(swallow(), seconds)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass


async def relay_lines(up_reader, writer, head, each_line, *, close: bool) -> None:
    """Relay a chunked stream of JSON lines (``docker events``), each line rewritten by
    ``each_line`` (a line that is not JSON passes as it is); one chunk per line, as it comes."""
    keep = [(k, v) for k, v in head.headers if k.lower() not in ("connection", "content-length")]
    if close:
        keep.append(("Connection", "close"))
    writer.write(httpio.encode_head(head.start, keep))
    await writer.drain()
    pending = b""
    while True:
        size, _ = await httpio.read_chunk_size(up_reader)
        if size == 0:
            break
        pending += await up_reader.readexactly(size)
        if await up_reader.readexactly(2) != b"\r\n":
            raise HttpError(502, "the engine sent a malformed chunk")
        *lines, pending = pending.split(b"\n")
        for line in lines:
            try:
                line = policy.dumps(each_line(json.loads(line))) if line.strip() else line
            except ValueError:
                pass
            writer.write(b"%x\r\n%s\n\r\n" % (len(line) + 1, line))
        await writer.drain()
    if pending:
        writer.write(b"%x\r\n%s\r\n" % (len(pending), pending))
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def splice(client_reader, client_writer, up_reader, up_writer, *, stall: float) -> None:
    """Relay a hijacked stream both ways until the engine side ends.

    A client that takes no output for ``stall`` seconds (a `docker attach` that was suspended)
    loses its stream: otherwise the relay stops reading the engine, the engine's buffers for that
    attach fill, and the container's removal waits behind them."""

    async def client_to_engine():
        try:
            while True:
                chunk = await client_reader.read(httpio.COPY_CHUNK)
                if not chunk:
                    break
                up_writer.write(chunk)
                await up_writer.drain()
            if up_writer.can_write_eof():
                up_writer.write_eof()  # stdin closed: the engine sees EOF, the process may end
        except (ConnectionError, OSError):
            pass

    async def engine_to_client():
        try:
            while True:
                chunk = await up_reader.read(httpio.COPY_CHUNK)
                if not chunk:
                    break
                client_writer.write(chunk)
                await asyncio.wait_for(client_writer.drain(), stall)
        except (ConnectionError, OSError):
            pass
        except asyncio.TimeoutError:
            log.info("an attached client took no output for %.0f s: its stream is closed", stall)
            client_writer.transport.abort()

    inbound = asyncio.create_task(client_to_engine())
    try:
        await engine_to_client()
    finally:
        inbound.cancel()
        try:
            await inbound
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
