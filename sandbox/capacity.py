"""Room on the engine, and the write lock every Start queues on to claim it.

Starts, restarts and the warm pool count what the engine holds and take the last place under one
lock (:func:`write_transaction`); the counts that run inside it are raw SQL (:func:`sql_names`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import uuid

from django.conf import settings
from django.db import connection, transaction

from .models import Sandbox

# Each request runs its database work in a thread of its own (Django's ThreadSensitiveContext),
# so 30 simultaneous Starts are 30 connections asking SQLite for its one write lock. SQLite's own
# wait is a sleep-and-retry with back-off (up to 100 ms between tries), which left a class's last
# learners waiting seconds for a few milliseconds of work. Writers queue on a lock instead and go
# the moment it is free: a thread lock within the process, then an flock on a file beside the
# database across processes (the site's several daphne processes, the reaper, the gateway).
_sqlite_writer = threading.Lock()
_sqlite_lock_files: dict[str, int] = {}


def _sqlite_lock_fd() -> int | None:
    """A descriptor of ``<database>.writer-lock``, opened once per process; None for a database
    in memory (the tests'), which no other process can open anyway."""
    name = str(connection.settings_dict["NAME"])
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    if name not in _sqlite_lock_files:
        _sqlite_lock_files[name] = os.open(f"{name}.writer-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return _sqlite_lock_files[name]


# On PostgreSQL, the same queue is a transaction-scoped advisory lock: without it two processes'
# Starts read the capacity and the learner's count at once and both take the last place.
PG_WRITE_LOCK_KEY = 0x7475746F  # "tuto": any constant the project's transactions agree on


@contextlib.contextmanager
def write_transaction():
    """``transaction.atomic()``, queued first behind every other Start's (see above)."""
    if connection.vendor != "sqlite":
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PG_WRITE_LOCK_KEY])
            yield
        return
    with _sqlite_writer:
        fd = _sqlite_lock_fd()
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with transaction.atomic():
                yield
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)


def sql_names(connection) -> dict[str, str]:
    """The sandbox table and its columns, quoted for ``connection`` (made once per database kind:
    the Start's write lock uses them)."""
    names = _quoted_names.get(connection.vendor)
    if names is None:
        quote = connection.ops.quote_name
        names = {field.name: quote(field.column) for field in Sandbox._meta.concrete_fields}
        names["table"] = quote(Sandbox._meta.db_table)
        _quoted_names[connection.vendor] = names
    return names


_quoted_names: dict[str, dict[str, str]] = {}


def learner_sandboxes_on_engine() -> int:
    return Sandbox.objects.filter(
        state__in=(Sandbox.State.STARTING, Sandbox.State.RUNNING, Sandbox.State.STOPPING), owner__isnull=False
    ).count()


def has_room() -> bool:
    """Room for one more learner sandbox, and no one waiting ahead (the queue is first served).

    One statement (rows per state, on the state index), in raw SQL: it runs inside every Start's
    write lock, where the ORM's time to build it made the class behind wait."""
    q = sql_names(connection)
    engine_states = (Sandbox.State.STARTING, Sandbox.State.RUNNING, Sandbox.State.STOPPING)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {q['state']}, COUNT(*) FROM {q['table']} WHERE {q['state']} = %s "
                       f"OR ({q['state']} IN (%s, %s, %s) AND {q['owner']} IS NOT NULL) GROUP BY {q['state']}",
                       [Sandbox.State.QUEUED, *engine_states])
        per_state = dict(cursor.fetchall())
    if per_state.get(Sandbox.State.QUEUED):
        return False
    return sum(per_state.get(state, 0) for state in engine_states) < settings.SANDBOX_CAPACITY


def held_by(user) -> list[tuple[uuid.UUID, str]]:
    """(id, lesson) of the learner's held sandboxes, locked for the transaction where the database
    can (raw SQL, for the reason :func:`has_room` gives)."""
    return held_by_owner(user.pk)


def held_by_owner(owner_id) -> list[tuple[uuid.UUID, str]]:
    q = sql_names(connection)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {q['id']}, {q['lesson']} FROM {q['table']} WHERE {q['owner']} = %s "
                       f"AND {q['state']} IN (%s, %s, %s){lock}", [owner_id, *Sandbox.HELD_STATES])
        rows = cursor.fetchall()
    return sorted((Sandbox._meta.pk.to_python(pk), lesson) for pk, lesson in rows)
