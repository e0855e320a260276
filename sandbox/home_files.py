"""Keeping a stopped sandbox's files: /home/learner saved on stop, put back on the next start.

Why an archive and not a volume: the learner's home is a size-capped tmpfs (SECURITY.md: "error
at the cap"), and a Docker ``local`` volume has no size cap on an ext4 host (``--storage-opt size``
needs XFS with project quotas), so a volume would let one learner fill the host's disk. A tmpfs
does not survive ``docker stop`` either. So on stop the home is streamed out with ``tar`` through
exec (never through the learner's TTY) into ``DATA_DIR/homes/<sandbox id>.tar.gz``, bounded by the
tmpfs cap, the container is removed as before, and the archive is unpacked into the next
container of the same sandbox. The archive is deleted once restored, or when the sandbox's time
to live runs out (the reaper), so at most one archive per stopped sandbox exists.

Docker workspaces and plain sandboxes as pods keep files (the pod backend's ``copy_home_out`` /
``copy_home_in``, tar through the Kubernetes exec API); a Kubernetes sandbox's namespace is
deleted on stop.
When the shell itself exits (``exit``) or the engine stops, the container's tmpfs is gone before
anything can be saved: for those, the reaper checkpoints each running sandbox's home every
``SANDBOX_HOME_CHECKPOINT_SECONDS`` while its learner is active (``checkpoint``), so what comes
back on the next start is at most that old.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
from pathlib import Path

from django.conf import settings

from .backends.base import BackendError
from .backends.docker import DockerBackend
from .backends.manifests import SANDBOX_HOME, SANDBOX_USER
from .engine import client as engine_client
from .engine.frames import STDOUT, FrameCutOff, read_frames

log = logging.getLogger(__name__)

SAVE_TIMEOUT_SECONDS = 60


class FilesNotKept(Exception):
    """The files could not be saved or put back; the message says why, for the learner."""


def archive_path(sandbox_id) -> Path:
    return Path(settings.DATA_DIR) / "homes" / f"{sandbox_id}.tar.gz"


def has_saved_files(sandbox_id) -> bool:
    return archive_path(sandbox_id).exists()


def drop(sandbox_id) -> None:
    """Forget a sandbox's saved files (its time to live ran out, or it was reset)."""
    target = archive_path(sandbox_id)
    for path in (target, *target.parent.glob(f"{sandbox_id}.*.part")):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def supports(backend) -> bool:
    return backend.keeps_home_files


async def _exec(backend, ref: str, command: list[str], *, stdin: bool) -> tuple[str, engine_client.HijackedStream]:
    """Create and start an exec in the sandbox; every engine call here has the backend's deadline
    (a wedged container must not hold a Stop)."""
    try:
        exec_id = await backend.exec_create(ref, command, user=SANDBOX_USER, workdir=SANDBOX_HOME,
                                            env={"HOME": SANDBOX_HOME}, stdin=stdin)
        stream = await engine_client.hijack(backend.docker_host, f"/exec/{exec_id}/start",
                                            body={"Detach": False, "Tty": False})
    except BackendError as exc:  # engine down, container gone or stuck: the caller reports it
        raise FilesNotKept(f"the sandbox could not be reached ({exc})") from exc
    return exec_id, stream


async def _exit_code(backend, exec_id: str) -> int | None:
    try:
        return await backend.exec_exit_code(exec_id)
    except BackendError as exc:
        raise FilesNotKept(f"the copy of the files could not be checked ({exc})") from exc


async def save(backend, sandbox_id, ref: str, *, still_wanted=None) -> int:
    """Stream the running sandbox's home into its archive; returns the archive's size in bytes.

    Raises :class:`FilesNotKept` (nothing half-written is left) when the sandbox is not running,
    the server's disk is full, or the copy does not finish in time. ``still_wanted`` (async, for
    checkpoints) is asked just before the archive replaces the previous one; if it says no, the
    copy is thrown away and 0 returned, so an older checkpoint never overwrites a stop's copy.
    """
    target = archive_path(sandbox_id)
    # Each save writes its own part file: a checkpoint and a stop may copy at the same time.
    part = target.parent / f"{sandbox_id}.{secrets.token_hex(4)}.part"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FilesNotKept(_disk_message(exc)) from exc
    if not isinstance(backend, DockerBackend):
        return await _save_through_backend(backend, ref, part, target, still_wanted)
    exec_id, stream = await _exec(backend, ref, ["tar", "-czf", "-", "-C", SANDBOX_HOME, "."], stdin=False)
    try:
        written = await asyncio.wait_for(_copy_stdout(stream, part), SAVE_TIMEOUT_SECONDS)
        code = await _exit_code(backend, exec_id)
        if code not in (0, None):
            raise FilesNotKept(f"tar ended with code {code}")
        if still_wanted is not None and not await still_wanted():
            return 0
        os.replace(part, target)
        return written
    except asyncio.TimeoutError as exc:
        raise FilesNotKept(f"saving the files took longer than {SAVE_TIMEOUT_SECONDS} s") from exc
    except OSError as exc:
        raise FilesNotKept(_disk_message(exc)) from exc
    finally:
        await stream.close()
        try:
            part.unlink()
        except FileNotFoundError:
            pass


async def _save_through_backend(backend, ref: str, part: Path, target: Path, still_wanted) -> int:
    """``save`` for a backend that copies the home itself (``copy_home_out``)."""
    try:
        with open(part, "wb") as out:
            written = await asyncio.wait_for(backend.copy_home_out(ref, out), SAVE_TIMEOUT_SECONDS)
        if still_wanted is not None and not await still_wanted():
            return 0
        os.replace(part, target)
        return written
    except asyncio.TimeoutError as exc:
        raise FilesNotKept(f"saving the files took longer than {SAVE_TIMEOUT_SECONDS} s") from exc
    except BackendError as exc:
        raise FilesNotKept(f"the files could not be copied ({exc})") from exc
    except OSError as exc:
        raise FilesNotKept(_disk_message(exc)) from exc
    finally:
        try:
            part.unlink()
        except FileNotFoundError:
            pass


def _disk_message(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the server's disk is full, so your files could not be kept (your lesson progress is safe)"
    return f"your files could not be written on the server ({exc.strerror or exc})"


async def _copy_stdout(stream: engine_client.HijackedStream, part: Path) -> int:
    """Write the stdout frames of a multiplexed exec stream to ``part``; stderr is logged."""
    written = 0
    with open(part, "wb") as out:
        try:
            async for kind, chunk in read_frames(stream.reader):
                if kind == STDOUT:
                    out.write(chunk)
                    written += len(chunk)
                else:
                    log.info("tar while saving files: %s", chunk[:200].decode(errors="replace"))
        except FrameCutOff as exc:
            raise FilesNotKept("the copy of the files was cut off") from exc
    return written


async def restore(backend, sandbox_id, ref: str) -> bool:
    """Unpack the saved archive into the new container's home; returns False when there was none.

    The archive is deleted once unpacked (the running sandbox now holds the files).
    """
    source = archive_path(sandbox_id)
    if not source.exists():
        return False
    if not isinstance(backend, DockerBackend):
        try:
            await asyncio.wait_for(backend.copy_home_in(ref, source), SAVE_TIMEOUT_SECONDS)
        except (OSError, BackendError, asyncio.TimeoutError) as exc:
            raise FilesNotKept(f"your saved files could not be put back ({exc or 'it took too long'})") from exc
        drop(sandbox_id)
        return True
    exec_id, stream = await _exec(backend, ref, ["tar", "-xzf", "-", "-C", SANDBOX_HOME], stdin=True)

    async def send_and_wait():
        with open(source, "rb") as archive:
            while chunk := archive.read(256 * 1024):
                await stream.write(chunk)
        stream.writer.write_eof()
        await engine_client.read_multiplexed(stream, 4096)

    try:
        # One deadline for the whole copy: a tar that stops reading would block the writes too.
        await asyncio.wait_for(send_and_wait(), SAVE_TIMEOUT_SECONDS)
    except (OSError, BackendError, asyncio.TimeoutError) as exc:
        raise FilesNotKept(f"your saved files could not be put back ({exc or 'it took too long'})") from exc
    finally:
        await stream.close()
    code = await _exit_code(backend, exec_id)
    if code not in (0, None):
        raise FilesNotKept(f"your saved files could not be put back (tar ended with code {code})")
    drop(sandbox_id)
    return True
