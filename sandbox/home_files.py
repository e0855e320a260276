"""Keeping a stopped sandbox's files: /home/learner saved on stop, put back on the next start.

Why an archive and not a volume: the learner's home is a size-capped tmpfs (SECURITY.md: "error
at the cap"), and a Docker ``local`` volume has no size cap on an ext4 host (``--storage-opt size``
needs XFS with project quotas), so a volume would let one learner fill the host's disk. A tmpfs
does not survive ``docker stop`` either. So on stop the home is streamed out with ``tar`` through
exec (never through the learner's TTY) into an archive, bounded by the tmpfs cap, the container is
removed as before, and the archive is unpacked into the next container of the same sandbox. The
archive is deleted once restored, or when the sandbox's time to live runs out (the reaper), so at
most one archive per stopped sandbox exists.

Where the archive lives is ``HOME_FILES_STORE``: ``"files"`` keeps it in
``DATA_DIR/homes/<sandbox id>.tar.gz``, which every process on one machine shares; ``"database"``
keeps it in a :class:`~sandbox.models.SavedHome` row, which every process sees even when each has
its own ``DATA_DIR`` (site replicas and the reaper on a cluster, each with an ``emptyDir``). Either
way the copy is first written to a part file in ``DATA_DIR/homes`` and only a finished copy becomes
the archive (a rename, or one ``INSERT`` that replaces the row: the database is never held while ``tar``
runs), so nothing half-written is ever restored.

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
import contextlib
import datetime as dt
import errno
import logging
import os
import secrets
import uuid
from pathlib import Path

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from .backends.base import BackendError
from .models import SavedHome

log = logging.getLogger(__name__)

SAVE_TIMEOUT_SECONDS = 60


class FilesNotKept(Exception):
    """The files could not be saved or put back; the message says why, for the learner."""


def in_database() -> bool:
    return getattr(settings, "HOME_FILES_STORE", "files") == "database"


def archive_path(sandbox_id) -> Path:
    """The archive in the files store; with either store, part files are written beside it."""
    return Path(settings.DATA_DIR) / "homes" / f"{sandbox_id}.tar.gz"


def _part_path(sandbox_id) -> Path:
    # Each copy has its own part file: a checkpoint and a stop may copy at the same time.
    return archive_path(sandbox_id).parent / f"{sandbox_id}.{secrets.token_hex(4)}.part"


def _as_uuid(sandbox_id) -> uuid.UUID | None:
    try:
        return sandbox_id if isinstance(sandbox_id, uuid.UUID) else uuid.UUID(str(sandbox_id))
    except ValueError:
        return None  # no sandbox has that id, so no row either


async def has_saved_files(sandbox_id) -> bool:
    if in_database():
        key = _as_uuid(sandbox_id)
        return key is not None and await SavedHome.objects.filter(pk=key).aexists()
    return archive_path(sandbox_id).exists()


async def saved_times(sandbox_ids) -> dict[str, dt.datetime]:
    """When each of these sandboxes' archive was written (those that have one), by id as text."""
    if in_database():
        keys = [key for key in map(_as_uuid, sandbox_ids) if key is not None]
        return {str(pk): saved_at async for pk, saved_at
                in SavedHome.objects.filter(pk__in=keys).values_list("sandbox_id", "saved_at")}
    times = {}
    for sandbox_id in sandbox_ids:
        try:
            mtime = archive_path(sandbox_id).stat().st_mtime
        except FileNotFoundError:
            continue
        times[str(sandbox_id)] = dt.datetime.fromtimestamp(mtime, tz=dt.timezone.utc)
    return times


async def kept_sandbox_ids() -> list[str]:
    """Every sandbox id with an archive or a part file here, for the reaper's sweep of expired and
    orphaned ones (a part file is left only by a process that died while copying)."""
    folder = archive_path("x").parent
    ids = {p.name.split(".")[0] for p in folder.iterdir() if p.name.endswith((".tar.gz", ".part"))} \
        if folder.is_dir() else set()
    if in_database():
        ids.update([str(pk) async for pk in SavedHome.objects.values_list("sandbox_id", flat=True)])
    return sorted(ids)


async def drop(sandbox_id) -> None:
    """Forget a sandbox's saved files (its time to live ran out, or it was reset)."""
    target = archive_path(sandbox_id)
    for path in (target, *target.parent.glob(f"{sandbox_id}.*.part")):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    if in_database() and (key := _as_uuid(sandbox_id)) is not None:
        await SavedHome.objects.filter(pk=key).adelete()


def supports(backend) -> bool:
    return backend.keeps_home_files


async def save(backend, sandbox_id, ref: str, *, still_wanted=None) -> int:
    """Stream the running sandbox's home into its archive; returns the archive's size in bytes.

    Raises :class:`FilesNotKept` (nothing half-written is left) when the sandbox is not running,
    the server's disk is full, or the copy does not finish in time. ``still_wanted`` (async, for
    checkpoints) is asked just before the archive replaces the previous one; if it says no, the
    copy is thrown away and 0 returned, so an older checkpoint never overwrites a stop's copy.
    """
    part = _part_path(sandbox_id)
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FilesNotKept(_disk_message(exc)) from exc
    try:
        with open(part, "wb") as out:
            written = await asyncio.wait_for(backend.copy_home_out(ref, out), SAVE_TIMEOUT_SECONDS)
        if still_wanted is not None and not await still_wanted():
            return 0
        if in_database():
            # Read off the event loop: up to the home's 64 MiB cap.
            await _write_row(_as_uuid(sandbox_id), await asyncio.to_thread(part.read_bytes))
        else:
            os.replace(part, archive_path(sandbox_id))
        return written
    except asyncio.TimeoutError as exc:
        raise FilesNotKept(f"saving the files took longer than {SAVE_TIMEOUT_SECONDS} s") from exc
    except BackendError as exc:
        raise FilesNotKept(f"the files could not be copied ({exc})") from exc
    except OSError as exc:
        raise FilesNotKept(_disk_message(exc)) from exc
    except DatabaseError as exc:
        # The stop still ends (its caller catches this); the previous copy, if any, is whole.
        raise FilesNotKept(f"your files could not be written on the server ({exc})") from exc
    finally:
        part.unlink(missing_ok=True)


async def _write_row(key: uuid.UUID, archive: bytes) -> None:
    """Replace the sandbox's row in one statement, its own transaction: an insert that replaces
    the row if there is one, so the database is held only while the bytes are written once
    (``update_or_create`` would first read the old archive back, and an update that finds no row
    would send the whole archive for nothing before the insert). Off the event loop, in the
    thread the ORM's own async calls use."""
    await sync_to_async(_upsert_row)(key, archive, timezone.now())


def _upsert_row(key: uuid.UUID, archive: bytes, saved_at: dt.datetime) -> None:
    if _binds_on_server():
        names = _saved_home_columns()
        with _server_bound_cursor() as cursor:
            # %b: the archive goes as one binary parameter, not as an escaped literal in the SQL.
            cursor.execute(
                f"INSERT INTO {names['table']} ({names['key']}, {names['archive']}, {names['saved_at']}) "
                f"VALUES (%s, %b, %s) ON CONFLICT ({names['key']}) DO UPDATE SET "
                f"{names['archive']} = EXCLUDED.{names['archive']}, {names['saved_at']} = EXCLUDED.{names['saved_at']}",
                [key, archive, saved_at], prepare=False)
        return
    SavedHome.objects.bulk_create([SavedHome(sandbox_id=key, archive=archive, saved_at=saved_at)],
                                  update_conflicts=True, unique_fields=["sandbox_id"],
                                  update_fields=["archive", "saved_at"])


def _read_row(key: uuid.UUID) -> bytes | memoryview | None:
    """The sandbox's saved archive, or None; on PostgreSQL fetched as binary (Django's cursor
    would fetch it as hex text, twice its size, and decode that)."""
    if _binds_on_server():
        names = _saved_home_columns()
        with _server_bound_cursor() as cursor:
            cursor.execute(f"SELECT {names['archive']} FROM {names['table']} WHERE {names['key']} = %s",
                           [key], binary=True, prepare=False)
            row = cursor.fetchone()
        return None if row is None else row[0]
    return SavedHome.objects.filter(pk=key).values_list("archive", flat=True).first()


# Django's PostgreSQL backend binds every query's parameters on the client (psycopg's
# ClientCursor) unless OPTIONS "server_side_binding" is set, so a 64 MiB archive would be inlined
# into the SQL text as an escaped literal of twice its size that the server parses back. Turning
# server-side binding on for the whole site is not wanted: some SQL the ORM writes only works with
# its parameters inlined (a parameter in SELECT and again in GROUP BY is two different parameters
# to the server), and it would make psycopg prepare repeated queries, which a pooler in
# transaction mode (pgbouncer before 1.21) does not carry between the connections it hands out.
# So only the saved home's two statements are bound on the server, never prepared (prepare=False),
# on Django's own connection: in its transaction and autocommit state, its errors turned into
# Django's (save() reports DatabaseError to the learner).

def _binds_on_server() -> bool:
    # psycopg (3) is a requirement, so Django's PostgreSQL backend uses it rather than psycopg2.
    return connection.vendor == "postgresql"


def _saved_home_columns() -> dict[str, str]:
    quote, meta = connection.ops.quote_name, SavedHome._meta
    return {"table": quote(meta.db_table), "key": quote(meta.get_field("sandbox_id").column),
            "archive": quote(meta.get_field("archive").column), "saved_at": quote(meta.get_field("saved_at").column)}


@contextlib.contextmanager
def _server_bound_cursor():
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            yield cursor


def _disk_message(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the server's disk is full, so your files could not be kept (your lesson progress is safe)"
    return f"your files could not be written on the server ({exc.strerror or exc})"


async def restore(backend, sandbox_id, ref: str) -> bool:
    """Unpack the saved archive into the new container's home; returns False when there was none.

    The archive is deleted once unpacked (the running sandbox now holds the files).
    """
    if in_database():
        return await _restore_from_database(backend, sandbox_id, ref)
    source = archive_path(sandbox_id)
    if not source.exists():
        return False
    await _copy_in(backend, ref, source)
    await drop(sandbox_id)
    return True


async def _restore_from_database(backend, sandbox_id, ref: str) -> bool:
    # The backends copy from a file (a Docker exec or a pod's stdin is fed from it in chunks), so
    # the row is written out to a part file first, and deleted only once the copy has gone in.
    key = _as_uuid(sandbox_id)
    try:
        archive = None if key is None else await sync_to_async(_read_row)(key)
    except DatabaseError as exc:
        raise FilesNotKept(f"your saved files could not be put back ({exc})") from exc
    if archive is None:
        return False
    part = _part_path(sandbox_id)
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(part.write_bytes, archive)
        await _copy_in(backend, ref, part)
    except OSError as exc:
        raise FilesNotKept(f"your saved files could not be put back ({_disk_message(exc)})") from exc
    finally:
        part.unlink(missing_ok=True)
    await drop(sandbox_id)
    return True


async def _copy_in(backend, ref: str, source: Path) -> None:
    try:
        await asyncio.wait_for(backend.copy_home_in(ref, source), SAVE_TIMEOUT_SECONDS)
    except (OSError, BackendError, asyncio.TimeoutError) as exc:
        raise FilesNotKept(f"your saved files could not be put back ({exc or 'it took too long'})") from exc
