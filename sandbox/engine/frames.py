"""The one reader of the engine's multiplexed output: a non-TTY attach or exec stream is a series
of frames, each an 8-byte header (stream kind: 1 stdout, 2 stderr; 3 bytes of padding; a
big-endian length) and that many bytes."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

from .errors import BackendError

STDOUT = 1
STDERR = 2
HEADER = struct.Struct(">BxxxL")
# A frame's payload is handed on in pieces of at most this size, so a huge frame is never held whole.
CHUNK_BYTES = 65536


class FrameCutOff(BackendError):
    """The stream ended inside a frame: what was read so far is all there is."""


async def read_frames(reader: asyncio.StreamReader) -> AsyncIterator[tuple[int, bytes]]:
    """Yield ``(stream kind, bytes)`` until the stream ends between two frames; raise
    :class:`FrameCutOff` when it ends inside one."""
    while True:
        try:
            header = await reader.readexactly(HEADER.size)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise FrameCutOff("the engine's output stream ended inside a frame header") from exc
            return
        except ConnectionError:
            return
        kind, remaining = HEADER.unpack(header)
        while remaining:
            try:
                chunk = await reader.read(min(remaining, CHUNK_BYTES))
            except ConnectionError:
                chunk = b""
            if not chunk:
                raise FrameCutOff("the engine's output stream ended inside a frame")
            remaining -= len(chunk)
            yield kind, chunk
