"""The warm pool: pre-created sandboxes per image, claimed on start, refilled in the background.

A container's labels cannot change after it is made, so a pooled sandbox keeps the id it was
created with (its ``tutorial.sandbox`` label) and the *row* takes the identity at claim: a
``pooled`` row has no owner, and claiming is one guarded UPDATE (``... WHERE state='pooled' AND
owner IS NULL``) that only one request can win, on SQLite and PostgreSQL alike. So a pooled
sandbox is never handed to two learners.

Only ``plain`` workspaces are pooled: a ``docker`` workspace's gateway takes the learner from the
container's ``tutorial.owner`` label, which a pooled container made for nobody cannot carry.
A pooled container's owner label is ``0`` and its ``TUTORIAL_LESSON`` is ``warm-pool``; the row
(which every check, console and permission reads) carries the real owner and lesson.

The pool only fills room the class does not use: learner sandboxes plus pooled ones stay within
``SANDBOX_CAPACITY``, so a full class drains the pool instead of growing past the machine.

Behind a class at work the pool refills slowly (:func:`refill_allowance`): a class that has just
claimed the pool would otherwise have it remade under its typing, tens of container creations
whose CPU on the engine (containerd, runc, a network namespace each) every echo and Check waits
behind on a small machine. While a learner's sandbox is starting, or a learner started, typed or
checked within ``CLASS_ACTIVE_SECONDS``, at most one pooled sandbox is being made at a time
(counted in the database, so across the site's processes and the reaper; SQLite's write lock
orders the plans, while on PostgreSQL two refills planning at the same instant may each begin
one) and one is begun at most every ``SANDBOX_WARM_POOL_BUSY_SPACING_SECONDS``; once the class is quiet the pool refills at full
speed (``REFILL_CONCURRENCY`` at a time) on the next reaper pass.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import router, transaction
from django.db.models import Max, Q
from django.db.models.signals import post_save
from django.utils import timezone

from . import capacity
from .backends.base import BackendError, EngineState
from .engines import get_backend, spec_for
from .images.recipes import image_tag
from .models import Sandbox
from .tasks import spawn

log = logging.getLogger(__name__)

POOLED_WORKSPACES = ("plain",)
POOL_LESSON = "warm-pool"
REFILL_CONCURRENCY = 2  # creating containers is CPU-bound on the engine: do not starve learners
# A class counts as at work while a learner did something this recently (consoles record typing
# every 30 s at most, so a typing class is always within it).
CLASS_ACTIVE_SECONDS = 90

_refilling: dict[int, asyncio.Task] = {}


def targets() -> dict[str, int]:
    """``{image tag: pooled sandboxes wanted}`` from ``SANDBOX_WARM_POOL``."""
    return {image_tag(name): count for name, count in (settings.SANDBOX_WARM_POOL or {}).items() if count > 0}


def _unclaimed():
    return Sandbox.objects.filter(owner__isnull=True, workspace__in=POOLED_WORKSPACES)


def claim(user, lesson: str, tag: str, policy, now: dt.datetime) -> Sandbox | None:
    """Give the oldest ready pooled sandbox of this image to ``user`` and return its row, read
    again (sync, in a transaction). See :func:`claim_id`."""
    claimed = claim_id(user, lesson, tag, policy, now)
    return Sandbox.objects.get(pk=claimed) if claimed is not None else None


def trusted_since(workspace: str, now: dt.datetime) -> dt.datetime | None:
    """The oldest ``seen_running_at`` of a pooled sandbox that is handed out without asking the
    engine (:func:`still_running`) again, or None when the workspace's backend always asks
    (``seen_running_trust_seconds``). The engine shows a pooled sandbox running when the pool
    makes it and at every reaper pass, which also takes out those that died."""
    seconds = get_backend(workspace).seen_running_trust_seconds
    return now - dt.timedelta(seconds=seconds) if seconds > 0 else None


def claim_id(user, lesson: str, tag: str, policy, now: dt.datetime, *, seen_since: dt.datetime | None = None):
    """Give the oldest ready pooled sandbox of this image to ``user``; its id, or None when the
    pool has none (sync, in a transaction). With ``seen_since``, only one the engine showed
    running since then (``seen_running_at``).

    One statement, ``UPDATE ... WHERE id = (oldest pooled) AND state = 'pooled' AND owner IS
    NULL RETURNING id``: the guard lets one transaction win a row however many race for it (on
    PostgreSQL the pick skips rows another claim has locked). Raw SQL because it runs inside the
    Start's write lock, which a class's Starts queue for: the ORM spent milliseconds building
    the same few statements on every claim while everyone behind waited. The caller reads the
    row after the lock (and runs :func:`announce` after the commit)."""
    from django.db import connection

    values = {"owner": user.pk, "lesson": lesson, "state": Sandbox.State.RUNNING, "created_at": now,
              "started_at": now, "last_activity_at": now,
              "expires_at": now + dt.timedelta(seconds=policy.ttl_seconds) if policy.ttl_seconds else None,
              "extensions": 0, "failure_reason": ""}
    q = capacity.sql_names(connection)
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    workspaces = ", ".join(["%s"] * len(POOLED_WORKSPACES))
    seen = f" AND {q['seen_running_at']} >= %s" if seen_since is not None else ""
    sql = (f"UPDATE {q['table']} SET {', '.join(f'{q[name]} = %s' for name in values)} "
           f"WHERE {q['id']} = (SELECT {q['id']} FROM {q['table']} WHERE {q['state']} = %s AND {q['owner']} IS NULL "
           f"AND {q['workspace']} IN ({workspaces}) AND {q['image']} = %s{seen} ORDER BY {q['created_at']} "
           f"LIMIT 1{skip_locked}) AND {q['state']} = %s AND {q['owner']} IS NULL RETURNING {q['id']}")
    params = [_db_value(connection, name, value) for name, value in values.items()]
    params += [Sandbox.State.POOLED, *POOLED_WORKSPACES, tag]
    if seen_since is not None:
        params.append(_db_value(connection, "seen_running_at", seen_since))
    params.append(Sandbox.State.POOLED)
    for _ in range(3):  # PostgreSQL without SKIP LOCKED: a row picked by a concurrent claim fails the guard
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is not None:
            return Sandbox._meta.pk.to_python(row[0])
        if skip_locked or connection.vendor == "sqlite":  # nothing left to race for
            return None
    return None


def _db_value(connection, field_name: str, value):
    return Sandbox._meta.get_field(field_name).get_db_prep_value(value, connection)


def announce(sandbox: Sandbox) -> None:
    """Tell post_save listeners (the classroom dashboard) that a claimed sandbox now runs, as a
    save of its state would, without writing the row again."""
    post_save.send(sender=Sandbox, instance=sandbox, created=False, update_fields=frozenset(["state"]),
                   raw=False, using=router.db_for_write(Sandbox, instance=sandbox))


async def seen_running(sandbox_ids, at: dt.datetime) -> None:
    """The engine listed these sandboxes running at ``at`` (see :func:`trusted_since`)."""
    if sandbox_ids:
        await _unclaimed().filter(pk__in=list(sandbox_ids), state=Sandbox.State.POOLED).aupdate(seen_running_at=at)


async def still_running(sandbox: Sandbox) -> bool:
    try:
        return await get_backend(sandbox.workspace).status(sandbox.engine_ref) == EngineState.RUNNING
    except BackendError:
        return False


async def discard(sandbox: Sandbox) -> None:
    """A claimed pooled sandbox turned out dead: mark its row gone and remove what is left."""
    sandbox.state = Sandbox.State.GONE
    sandbox.failure_reason = "The pre-started sandbox had stopped; a new one was made."
    await sync_to_async(sandbox.save)(update_fields=["state", "failure_reason"])
    try:
        await get_backend(sandbox.workspace).destroy(str(sandbox.id))
    except BackendError as exc:
        log.warning("could not remove dead pooled sandbox %s: %s", sandbox.id, exc)


def schedule_refill() -> None:
    """Refill the pool in the background of this process, once at a time."""
    if not targets():
        return
    loop = asyncio.get_running_loop()
    running = _refilling.get(id(loop))
    if running is not None and not running.done():
        return
    _refilling[id(loop)] = spawn(refill())


def refill_allowance(lacking: int, *, class_active: bool, in_flight: int, since_last_seconds: float | None,
                     spacing_seconds: float) -> int:
    """How many pooled sandboxes one refill may begin now, of the ``lacking`` it has room for.

    Idle, all of them. While a class works, one, and only when no other pooled sandbox is being
    made (``in_flight``) and the last one was begun at least ``spacing_seconds`` ago
    (``since_last_seconds``; None when there is none); a spacing of 0 turns the pacing off."""
    if lacking <= 0:
        return 0
    if not class_active or spacing_seconds <= 0:
        return lacking
    if in_flight > 0 or (since_last_seconds is not None and since_last_seconds < spacing_seconds):
        return 0
    return 1


def class_active(now: dt.datetime) -> bool:
    """A learner's sandbox is starting, or one of theirs saw a start, a keystroke or a Check lately."""
    recent = now - dt.timedelta(seconds=CLASS_ACTIVE_SECONDS)
    return Sandbox.objects.filter(owner__isnull=False).filter(
        Q(state=Sandbox.State.STARTING) | Q(state=Sandbox.State.RUNNING, last_activity_at__gte=recent)).exists()


def _allowed(room: int, now: dt.datetime) -> int:
    """``room`` paced by :func:`refill_allowance` (sync, inside the plan's transaction)."""
    spacing = settings.SANDBOX_WARM_POOL_BUSY_SPACING_SECONDS
    if room <= 0 or spacing <= 0 or not class_active(now):
        return max(0, room)
    making = _unclaimed().filter(state=Sandbox.State.STARTING)
    # A pooled row's started_at is when its refill began it (a claim rewrites it, and the row is
    # no longer the pool's).
    last = _unclaimed().filter(state__in=(Sandbox.State.POOLED, Sandbox.State.STARTING)).aggregate(
        last=Max("started_at"))["last"]
    return refill_allowance(room, class_active=True, in_flight=making.count(),
                            since_last_seconds=(now - last).total_seconds() if last else None,
                            spacing_seconds=spacing)


@sync_to_async
def _plan() -> list[Sandbox]:
    """New pooled rows (state ``starting``, no owner) for what each image lacks, within room."""
    wanted = targets()
    if not wanted:
        return []
    pooled = _unclaimed().filter(state__in=(Sandbox.State.POOLED, Sandbox.State.STARTING))

    def lacking() -> dict[str, int]:
        have = {tag: pooled.filter(image=tag).count() for tag in wanted}
        return {tag: count - have[tag] for tag, count in wanted.items() if count > have[tag]}

    # A full pool (every reaper pass, most claims) is seen without the write lock a transaction takes.
    if not lacking():
        return []
    rows = []
    with transaction.atomic():
        missing = lacking()
        if not missing:
            return []
        room = settings.SANDBOX_CAPACITY - capacity.learner_sandboxes_on_engine() - pooled.count()
        now = timezone.now()
        room = _allowed(room, now)
        for tag, count in missing.items():
            for _ in range(max(0, min(count, room))):
                rows.append(Sandbox.objects.create(lesson=POOL_LESSON, workspace=POOLED_WORKSPACES[0], image=tag,
                                                   state=Sandbox.State.STARTING, started_at=now))
                room -= 1
    return rows


async def refill() -> int:
    """Create what the pool lacks; returns how many pooled sandboxes are now ready."""
    rows = await _plan()
    gate = asyncio.Semaphore(REFILL_CONCURRENCY)

    async def make(sandbox: Sandbox) -> bool:
        async with gate:
            backend = get_backend(sandbox.workspace)
            try:
                ref = await backend.create(spec_for(sandbox))
            except BackendError as exc:
                log.warning("warm pool: could not pre-start a sandbox of %s: %s", sandbox.image, exc)
                await Sandbox.objects.filter(pk=sandbox.pk).adelete()
                return False
            # Only a row still unclaimed and starting becomes pooled (the reaper may have failed it).
            made = await Sandbox.objects.filter(pk=sandbox.pk, state=Sandbox.State.STARTING, owner__isnull=True).aupdate(
                state=Sandbox.State.POOLED, engine_ref=ref, seen_running_at=timezone.now())
            if not made:
                try:
                    await backend.destroy(str(sandbox.id))
                except BackendError as exc:  # left for the reaper: its row is no longer live
                    log.warning("warm pool: could not remove unused %s now: %s", sandbox.id, exc)
            return bool(made)

    results = await asyncio.gather(*(make(s) for s in rows))
    return sum(results)


async def drain(keep: dict[str, int] | None = None) -> int:
    """Remove pooled sandboxes beyond each image's target (all, for images no longer pooled)."""
    keep = targets() if keep is None else keep
    removed = 0
    pooled = [s async for s in _unclaimed().filter(state=Sandbox.State.POOLED).order_by("-created_at")]
    seen: dict[str, int] = {}
    for sandbox in pooled:
        seen[sandbox.image] = seen.get(sandbox.image, 0) + 1
        if seen[sandbox.image] <= keep.get(sandbox.image, 0):
            continue
        # Take it out of the pool first (guarded: a learner may be claiming it right now).
        if not await Sandbox.objects.filter(pk=sandbox.pk, state=Sandbox.State.POOLED, owner__isnull=True).aupdate(
                state=Sandbox.State.GONE):
            continue
        try:
            await get_backend(sandbox.workspace).destroy(str(sandbox.id))
        except BackendError as exc:
            log.warning("warm pool: could not remove %s now: %s", sandbox.id, exc)
        await Sandbox.objects.filter(pk=sandbox.pk).adelete()
        removed += 1
    return removed


async def drain_one(sandbox: Sandbox) -> bool:
    """Take one pooled sandbox out (its container died): guarded against a claim racing it."""
    if not await Sandbox.objects.filter(pk=sandbox.pk, state=Sandbox.State.POOLED, owner__isnull=True).aupdate(
            state=Sandbox.State.GONE):
        return False
    try:
        await get_backend(sandbox.workspace).destroy(str(sandbox.id))
    except BackendError as exc:
        log.warning("warm pool: could not remove %s now: %s", sandbox.id, exc)
        return True  # the row stays "gone"; the next pass removes the leftovers as orphans
    await Sandbox.objects.filter(pk=sandbox.pk).adelete()
    return True
