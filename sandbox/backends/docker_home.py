"""A Docker sandbox's home copied out and back in (``DockerBackend.copy_home_out`` / ``copy_home_in``).

``tar`` runs through exec as the learner's user, never in the learner's TTY, and its bytes go
through the engine's multiplexed exec stream. ``sandbox.home_files`` decides where the archive
lives, how long a copy may take, and what the learner is told when it fails.

The functions take the ``DockerBackend`` (its ``exec_create``, ``exec_exit_code`` and
``docker_host``) rather than importing it: the backend imports this module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import BinaryIO

from ..engine import client as engine_client
from ..engine.frames import STDOUT, FrameCutOff, read_frames
from .base import BackendError
from .manifests import SANDBOX_HOME, SANDBOX_USER

log = logging.getLogger(__name__)


async def _exec(backend, ref: str, command: list[str], *, stdin: bool) -> tuple[str, engine_client.HijackedStream]:
    """Create and start an exec in the sandbox; every engine call here has the backend's deadline
    (a wedged container must not hold a Stop)."""
    exec_id = await backend.exec_create(ref, command, user=SANDBOX_USER, workdir=SANDBOX_HOME,
                                        env={"HOME": SANDBOX_HOME}, stdin=stdin)
    stream = await engine_client.hijack(backend.docker_host, f"/exec/{exec_id}/start",
                                        body={"Detach": False, "Tty": False})
    return exec_id, stream


async def _check_tar(backend, exec_id: str) -> None:
    code = await backend.exec_exit_code(exec_id)
    if code not in (0, None):
        raise BackendError(f"tar ended with code {code}")


async def copy_home_out(backend, ref: str, out: BinaryIO) -> int:
    """Write a gzipped tar of the home to ``out``; the bytes written. ``BackendError`` when tar fails."""
    exec_id, stream = await _exec(backend, ref, ["tar", "-czf", "-", "-C", SANDBOX_HOME, "."], stdin=False)
    try:
        written = await _copy_stdout(stream, out)
    finally:
        await stream.close()
    await _check_tar(backend, exec_id)
    return written


async def _copy_stdout(stream: engine_client.HijackedStream, out: BinaryIO) -> int:
    """Write the stdout frames of a multiplexed exec stream to ``out``; stderr is logged."""
    written = 0
    try:
        async for kind, chunk in read_frames(stream.reader):
            if kind == STDOUT:
                out.write(chunk)
                written += len(chunk)
            else:
                log.info("tar while saving files: %s", chunk[:200].decode(errors="replace"))
    except FrameCutOff as exc:
        raise BackendError("the copy of the files was cut off") from exc
    return written


async def copy_home_in(backend, ref: str, archive: Path) -> None:
    """Unpack the gzipped tar at ``archive`` into the home; ``BackendError`` when tar fails."""
    exec_id, stream = await _exec(backend, ref, ["tar", "-xzf", "-", "-C", SANDBOX_HOME], stdin=True)
    try:
        with open(archive, "rb") as source:
            while chunk := source.read(256 * 1024):
                await stream.write(chunk)
        stream.writer.write_eof()
        await engine_client.read_multiplexed(stream, 4096)
    finally:
        await stream.close()
    await _check_tar(backend, exec_id)
