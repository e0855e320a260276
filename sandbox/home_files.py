"""Keeping a stopped sandbox's files: /home/learner saved on stop, put back on the next start.

Why an archive and not a volume: the learner's home is a size-capped tmpfs (SECURITY.md: "error
at the cap"), and a Docker ``local`` volume has no size cap on an ext4 host (``--storage-opt size``
needs XFS with project quotas), so a volume would let one learner fill the host's disk. A tmpfs
does not survive ``docker stop`` either. So on stop the home is streamed out with ``tar`` through
exec (never through the learner's TTY) into ``DATA_DIR/homes/<sandbox id>.tar.gz``, bounded by the
tmpfs cap, the container is removed as before, and the archive is unpacked into the next
container of the same sandbox. The archive is deleted once restored, or when the sandbox's time
to live runs out (the reaper), so at most one archive per stopped sandbox exists.

A backend keeps files when it says so (``keeps_home_files``) and copies the home itself
(``copy_home_out`` / ``copy_home_in``): Docker sandboxes through the engine's exec streams
(``backends/docker_home.py``), plain sandboxes as pods through the Kubernetes exec API; a
Kubernetes sandbox's namespace is deleted on stop.
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


async def restore(backend, sandbox_id, ref: str) -> bool:
    """Unpack the saved archive into the new container's home; returns False when there was none.

    The archive is deleted once unpacked (the running sandbox now holds the files).
    """
    source = archive_path(sandbox_id)
    if not source.exists():
        return False
    try:
        await asyncio.wait_for(backend.copy_home_in(ref, source), SAVE_TIMEOUT_SECONDS)
    except (OSError, BackendError, asyncio.TimeoutError) as exc:
        raise FilesNotKept(f"your saved files could not be put back ({exc or 'it took too long'})") from exc
    drop(sandbox_id)
    return True
