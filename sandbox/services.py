"""The only API that views, consumers and commands call to touch sandboxes.

Database rows say what a learner has; the backend says what the engine holds. Every function here
keeps the two in step and turns engine failures into a state and a reason the learner can read.

Backend lookup (``sandbox.engines``), background tasks (``sandbox.tasks``), what open consoles
are told (``sandbox.events``) and room on the engine with the Start's write lock
(``sandbox.capacity``) live below this module, so the warm pool uses them without importing it. A start past ``SANDBOX_CAPACITY`` joins a queue (state ``queued``) and is
started by :func:`promote_queue` when room frees; a plain-workspace start claims a pre-created
sandbox from the warm pool (``sandbox.pool``) when one is ready; a stop saves the learner's home
(``sandbox.home_files``) so a restart gets it back until the time to live runs out; the reaper
(``sandbox.reaper``) applies the time to live and the idle timeout and reconciles the engine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import capacity, home_files, lifecycle, pool
from .backends.base import (
    BackendError,
    EngineState,
    EngineUnavailable,
    RunResult,
    SandboxBackend,
    SandboxStuck,
)
from .engines import get_backend, spec_for
from .events import broadcast_state, broadcast_timer, send_notice
from .gateway.hooks import SiteHooks
from .images.recipes import image_tag
from .models import Sandbox, read_sandbox
from .tasks import spawn
from .tasks import wait_for_background  # noqa: F401 - the reaper, which imports only services, waits through it

log = logging.getLogger(__name__)



class SandboxLimitReached(Exception):
    """The learner already has as many live sandboxes as allowed."""


class ExtendNotAllowed(Exception):
    """The learner may not extend this sandbox (not running, no extensions left); says why."""


# -- rows -----------------------------------------------------------------------------------------
def _limit_message(held: int) -> str:
    # Raised to the view that asked (Start, Restart, Reset), in its reader's language.
    return ngettext("You already have %(count)d sandbox running; stop one to start another.",
                    "You already have %(count)d sandboxes running; stop one to start another.", held) % {"count": held}


# Sandboxes held per client address: a script making many accounts (guests are cheap) from one
# machine must not fill the class's capacity. The ids each address holds are kept in the cache
# (shared by every server process under `make run`) and checked under the Start's write lock, so
# simultaneous Starts from one address cannot all take the last place.
ADDRESS_KEY_SECONDS = 24 * 3600


def _address_key(address: str) -> str:
    return f"sandbox-held-by-address:{address}"


def _held_from_address(address: str, exclude=None) -> list:
    ids = caches["default"].get(_address_key(address)) or []
    if not ids:
        return []
    held = Sandbox.objects.filter(pk__in=ids, state__in=Sandbox.HELD_STATES)
    if exclude is not None:
        held = held.exclude(pk=exclude)
    return list(held.values_list("pk", flat=True))


def _check_address(address: str, exclude=None) -> None:
    limit = settings.SANDBOXES_PER_ADDRESS
    if not address or limit <= 0:
        return
    held = _held_from_address(address, exclude)
    if len(held) >= limit:
        raise SandboxLimitReached(ngettext(
            "%(count)d sandbox is already running from your network address; stop one to start another.",
            "%(count)d sandboxes are already running from your network address; stop one to start another.",
            len(held)) % {"count": len(held)})


def _record_address(address: str, sandbox_id) -> None:
    if not address or settings.SANDBOXES_PER_ADDRESS <= 0:
        return
    held = [pk for pk in _held_from_address(address) if pk != sandbox_id]
    caches["default"].set(_address_key(address), [*held, sandbox_id], ADDRESS_KEY_SECONDS)


def _queue(sandbox: Sandbox, now) -> None:
    sandbox.state = Sandbox.State.QUEUED
    sandbox.queued_at = now
    sandbox.failure_reason = ""
    sandbox.save(update_fields=["state", "queued_at", "failure_reason"])


@sync_to_async
def _claim_row(user, lesson: str, workspace: str, image: str, client_address: str = "") -> tuple[Sandbox, str]:
    """Find the learner's sandbox for this lesson, or make one; says what to do next:
    ``"have"`` (it exists: running, starting or queued), ``"warm"`` (a pooled one the engine
    showed running moments ago was claimed), ``"warm-unseen"`` (a pooled one was claimed whose
    container or pod the engine must be asked about first), ``"queued"`` (no room: it waits) or
    ``"create"`` (a new starting row to create on the engine).

    The admission rule every start shares (here, :func:`_claim_restart` and so Reset): the
    learner's own limit, then the client address's, then room under the capacity or the queue."""
    now = timezone.now()
    claimed_id, seen = None, False
    with capacity.write_transaction():
        held = capacity.held_by(user)  # the one for this lesson, and how many in all
        existing_id = next((pk for pk, held_lesson in held if held_lesson == lesson), None)
        if existing_id is None:
            if len(held) >= settings.SANDBOXES_PER_USER:
                raise SandboxLimitReached(_limit_message(len(held)))
            _check_address(client_address)
            tag = image_tag(image)
            if not capacity.has_room():
                sandbox = Sandbox(owner=user, lesson=lesson, workspace=workspace, image=tag)
                _queue(sandbox, now)
                _record_address(client_address, sandbox.pk)
                return sandbox, "queued"
            if workspace in pool.POOLED_WORKSPACES:
                policy, trusted_since = lifecycle.policy_for(lesson), pool.trusted_since(workspace, now)
                if trusted_since is not None:
                    claimed_id = pool.claim_id(user, lesson, tag, policy, now, seen_since=trusted_since)
                    seen = claimed_id is not None
                if claimed_id is None:
                    claimed_id = pool.claim_id(user, lesson, tag, policy, now)
            if claimed_id is None:
                sandbox = Sandbox.objects.create(owner=user, lesson=lesson, workspace=workspace, image=tag,
                                                 state=Sandbox.State.STARTING, started_at=now)
                _record_address(client_address, sandbox.pk)
                return sandbox, "create"
            _record_address(client_address, claimed_id)
    # Rows are read whole after the write lock, so the class behind does not wait for it.
    if existing_id is not None:
        return _read(existing_id), "have"
    claimed = _read(claimed_id)
    pool.announce(claimed)  # committed: the dashboard hears it, outside the write lock
    return claimed, "warm" if seen else "warm-unseen"


def _read(sandbox_id) -> Sandbox:
    sandbox = read_sandbox(sandbox_id)
    if sandbox is None:
        raise Sandbox.DoesNotExist(f"sandbox {sandbox_id}")
    return sandbox


@sync_to_async
def _save(sandbox: Sandbox, *fields: str) -> None:
    sandbox.save(update_fields=list(fields))


@sync_to_async
def _load_owner(sandbox: Sandbox) -> None:
    # spec_for reads the owner's name; fetch it here, outside the event loop.
    if sandbox.owner_id is not None:
        sandbox.owner  # noqa: B018


async def queue_position(sandbox: Sandbox) -> int | None:
    """1 for the next to start; None when the sandbox is not queued (without a database trip:
    every pane render and console asks, and a thread hop costs the event loop under load)."""
    if sandbox.state != Sandbox.State.QUEUED:
        return None
    return await sync_to_async(_position_in_queue)(sandbox)


def _position_in_queue(sandbox: Sandbox) -> int | None:
    order = _queue_order()
    for index, row in enumerate(order, start=1):
        if row.pk == sandbox.pk:
            return index
    return None


def _queue_order() -> list[Sandbox]:
    queued = list(Sandbox.objects.filter(state=Sandbox.State.QUEUED))
    running_owners = set(
        Sandbox.objects.filter(state__in=Sandbox.LIVE_STATES, owner__isnull=False).values_list("owner_id", flat=True)
    )
    return lifecycle.queue_order(queued, running_owners)


# -- start, stop, reset ----------------------------------------------------------------------------
async def start_sandbox(user, lesson: str, workspace: str, image: str, *, client_address: str = "") -> Sandbox:
    """Return the learner's sandbox for this lesson: running, or queued with a position, or
    failed with a reason. Creates it if needed, from the warm pool when one is ready.

    On an engine failure the row is marked failed with the reason and returned, never raised:
    the page shows the reason. Past the global capacity the row is ``queued``, never refused.
    Past the learner's limit (or ``SANDBOXES_PER_ADDRESS`` for ``client_address``, the address
    the request came from) it raises :class:`SandboxLimitReached`.
    """
    sandbox, outcome = await _claim_row(user, lesson, workspace, image, client_address)
    if outcome == "queued":
        await broadcast_queue_positions()
        return sandbox
    if outcome in ("warm", "warm-unseen"):
        if outcome == "warm" or await pool.still_running(sandbox):
            # No broadcast: no console can be open on a row that was the pool's a moment ago
            # (consoles need the owner), and the dashboard heard pool.announce.
            pool.schedule_refill()
            return sandbox
        # The pooled container died (an engine restart): give this learner a fresh one instead.
        await pool.discard(sandbox)
        return await start_sandbox(user, lesson, workspace, image, client_address=client_address)
    if outcome == "have":
        return sandbox
    await _create_on_engine(sandbox)
    pool.schedule_refill()
    return sandbox


async def _create_on_engine(sandbox: Sandbox) -> None:
    await _load_owner(sandbox)
    now = timezone.now()
    sandbox.state = Sandbox.State.STARTING
    sandbox.failure_reason = ""
    sandbox.started_at = now
    await _save(sandbox, "state", "failure_reason", "started_at")
    await broadcast_state(sandbox)
    backend = get_backend(sandbox.workspace)
    try:
        ref = await backend.create(spec_for(sandbox))
    except BackendError as exc:
        log.warning("sandbox %s failed to start: %s", sandbox.id, exc)
        sandbox.state = Sandbox.State.FAILED
        sandbox.failure_reason = str(exc)
        await _save(sandbox, "state", "failure_reason")
        await broadcast_state(sandbox)
        spawn(promote_queue())
        return
    notice = ""
    if home_files.supports(backend):
        try:
            await home_files.restore(backend, sandbox.id, ref)
        except home_files.FilesNotKept as exc:
            log.warning("sandbox %s: %s", sandbox.id, exc)
            notice = str(exc)
    now = timezone.now()
    policy = lifecycle.policy_for(sandbox.lesson)
    # Only a row still starting becomes running: Stop (or the reaper) may have ended it meanwhile,
    # and then what was just made must go instead.
    if not await Sandbox.objects.filter(pk=sandbox.pk, state=Sandbox.State.STARTING).aexists():
        log.info("sandbox %s was stopped while it started; removing it", sandbox.id)
        await _destroy_or_set_aside(backend, sandbox)
        await sandbox.arefresh_from_db()
        return
    sandbox.engine_ref = ref
    sandbox.state = Sandbox.State.RUNNING
    sandbox.started_at = now
    sandbox.last_activity_at = now
    sandbox.stopped_at = None
    sandbox.queued_at = None
    sandbox.idle_warned_at = None
    fields = ["engine_ref", "state", "started_at", "last_activity_at", "stopped_at", "queued_at", "idle_warned_at"]
    if sandbox.expires_at is None or sandbox.expires_at <= now:
        # A new time to live: the first start, or a start after the old one ran out.
        sandbox.expires_at = now + dt.timedelta(seconds=policy.ttl_seconds) if policy.ttl_seconds else None
        sandbox.extensions = 0
        sandbox.expiry_warned_at = None
        fields += ["expires_at", "extensions", "expiry_warned_at"]
    await _save(sandbox, *fields)
    await broadcast_state(sandbox)
    if notice:
        await send_notice(sandbox.id, notice)


async def stop_sandbox(sandbox: Sandbox, reason: str = "", *, keep_files: bool = True,
                       announce_stopping: bool | None = None) -> Sandbox:
    """Stop the sandbox and remove everything it made on the engine. Progress is kept elsewhere.

    With ``keep_files`` (the default) the learner's home is saved first and comes back on the
    next start until the time to live runs out; the time-to-live stop passes ``False``.
    """
    was = sandbox.state
    if was == Sandbox.State.QUEUED:
        sandbox.state = Sandbox.State.STOPPED
        sandbox.stopped_at = timezone.now()
        sandbox.failure_reason = reason
        await _save(sandbox, "state", "stopped_at", "failure_reason")
        await broadcast_state(sandbox)
        await broadcast_queue_positions()
        return sandbox
    backend = get_backend(sandbox.workspace)
    # "stopping" is saved (a second Stop, the reaper and restart see it) and pushed with its reason
    # only when someone else stops the sandbox (time up, idle, an instructor): the learner who
    # pressed Stop sees the pane say so, and their consoles hear "stopped" as the first word.
    sandbox.state = Sandbox.State.STOPPING
    sandbox.failure_reason = reason
    await _save(sandbox, "state", "failure_reason")
    if reason if announce_stopping is None else announce_stopping:
        await broadcast_state(sandbox)
    files_problem = ""
    if keep_files and was == Sandbox.State.RUNNING and sandbox.engine_ref and home_files.supports(backend):
        try:
            await home_files.save(backend, sandbox.id, sandbox.engine_ref)
            sandbox.files_saved_at = timezone.now()
        except (home_files.FilesNotKept, BackendError) as exc:
            # The shell exited (nothing left to save), the engine is down, or the disk is full.
            files_problem = str(exc)
            log.info("sandbox %s: files not kept: %s", sandbox.id, exc)
    elif not keep_files:
        await home_files.drop(sandbox.id)
        sandbox.files_saved_at = None
    # Save and announce before destroying: consoles (on any server process) hear "stopped" before
    # their attach ends, and console_ended() then finds the row stopped instead of stopping it again.
    sandbox.state = Sandbox.State.STOPPED
    sandbox.stopped_at = timezone.now()
    if files_problem and "disk is full" in files_problem:
        sandbox.failure_reason = f"{reason} {files_problem[0].upper()}{files_problem[1:]}.".strip()
    await _save(sandbox, "state", "stopped_at", "failure_reason", "files_saved_at")
    await broadcast_state(sandbox)
    await _destroy_or_set_aside(backend, sandbox, Sandbox.State.STOPPED)
    spawn(promote_queue())
    return sandbox


async def _destroy_or_set_aside(backend: SandboxBackend, sandbox: Sandbox, expected_state: str | None = None) -> bool:
    """Remove what the sandbox has on the engine; never raises, never waits past the backend's
    deadlines. When the engine will not let go of a container (:class:`SandboxStuck`), the row, if
    still in ``expected_state``, becomes ``gone`` with the reason for the learner to read, and
    the reaper retries the removal on its next passes; other engine failures (the engine down)
    are logged and left to the reaper. True when everything went."""
    try:
        await backend.destroy(str(sandbox.id))
        return True
    except SandboxStuck as exc:
        log.warning("sandbox %s set aside: %s", sandbox.id, exc)
        reason = f"{sandbox.failure_reason} {exc}".strip()
        if expected_state is not None and await Sandbox.objects.filter(pk=sandbox.pk, state=expected_state).aupdate(
                state=Sandbox.State.GONE, failure_reason=reason):
            sandbox.state, sandbox.failure_reason = Sandbox.State.GONE, reason
            await broadcast_state(sandbox)
    except BackendError as exc:
        # The engine may be down: the row still stops; the reaper removes leftovers later.
        log.warning("could not remove sandbox %s now: %s", sandbox.id, exc)
    return False


async def reset_sandbox(sandbox: Sandbox, *, client_address: str = "") -> Sandbox:
    """Throw the sandbox and its saved files away and give the learner a fresh one for the same
    lesson.

    A running sandbox is replaced where it stands (it keeps its place under the capacity). A
    queued or starting one only loses its saved files: it comes up fresh when its turn comes.
    A stopped or failed one starts again fresh through the same limit and queue as Restart, so
    Reset is never a way past them. One that is stopping is left to finish."""
    await sandbox.arefresh_from_db()
    if sandbox.state == Sandbox.State.STOPPING:
        return sandbox
    await home_files.drop(sandbox.id)
    if sandbox.state in (Sandbox.State.QUEUED, Sandbox.State.STARTING):
        return sandbox
    if sandbox.state != Sandbox.State.RUNNING:
        return await restart_sandbox(sandbox, client_address=client_address)
    removed = await _destroy_or_set_aside(get_backend(sandbox.workspace), sandbox, Sandbox.State.RUNNING)
    if not removed and sandbox.state == Sandbox.State.GONE:
        return sandbox  # the engine would not let go of the old one: the row says why
    await _create_on_engine(sandbox)
    return sandbox


async def restart_sandbox(sandbox: Sandbox, *, client_address: str = "") -> Sandbox:
    """Start a stopped or failed sandbox again (a new container under the same id, with the
    files it had when it stopped); past the capacity it is queued. A sandbox that is already
    held (queued, starting, running) or stopping is returned as it is."""
    outcome = await _claim_restart(sandbox, client_address)
    if outcome == "queued":
        await broadcast_queue_positions()
        return sandbox
    if outcome == "create":
        await _create_on_engine(sandbox)
    return sandbox


@sync_to_async
def _claim_restart(sandbox: Sandbox, client_address: str = "") -> str:
    """The admission rule of :func:`_claim_row` for an existing row, under the same write lock:
    ``"have"`` (nothing to start), ``"queued"`` or ``"create"``."""
    with capacity.write_transaction():
        state = Sandbox.objects.filter(pk=sandbox.pk).values_list("state", flat=True).first()
        if state is None or state in (*Sandbox.HELD_STATES, Sandbox.State.STOPPING, Sandbox.State.POOLED):
            if state is not None:
                sandbox.state = state
            return "have"
        held = [pk for pk, _lesson in capacity.held_by_owner(sandbox.owner_id) if pk != sandbox.pk]
        if len(held) >= settings.SANDBOXES_PER_USER:
            raise SandboxLimitReached(_limit_message(len(held)))
        _check_address(client_address, exclude=sandbox.pk)
        _record_address(client_address, sandbox.pk)
        if not capacity.has_room():
            _queue(sandbox, timezone.now())
            return "queued"
        # Claimed under the lock: a second Restart (another tab) now finds it held.
        sandbox.state = Sandbox.State.STARTING
        sandbox.failure_reason = ""
        sandbox.started_at = timezone.now()
        sandbox.save(update_fields=["state", "failure_reason", "started_at"])
        return "create"


# -- time ------------------------------------------------------------------------------------------
async def extend_sandbox(sandbox: Sandbox, seconds: int) -> Sandbox:
    """Give the sandbox ``seconds`` more time to live (from now if it already ran out) and count
    as activity. For instructors and for :func:`learner_extend`; checks no allowance itself."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    now = timezone.now()
    base = sandbox.expires_at if sandbox.expires_at and sandbox.expires_at > now else now
    sandbox.expires_at = base + dt.timedelta(seconds=seconds)
    sandbox.expiry_warned_at = None
    sandbox.last_activity_at = now
    await _save(sandbox, "expires_at", "expiry_warned_at", "last_activity_at")
    await broadcast_timer(sandbox)
    return sandbox


async def learner_extend(sandbox: Sandbox) -> Sandbox:
    """The learner's Extend button: the lesson's extension, while extensions are left."""
    policy = lifecycle.policy_for(sandbox.lesson)
    if sandbox.state != Sandbox.State.RUNNING:
        raise ExtendNotAllowed(_("Only a running sandbox can be extended."))
    if lifecycle.extensions_left(sandbox, policy) <= 0:
        raise ExtendNotAllowed(_("This sandbox cannot be extended any further."))
    updated = await Sandbox.objects.filter(pk=sandbox.pk, extensions=sandbox.extensions).aupdate(
        extensions=F("extensions") + 1)
    if not updated:  # another tab extended it at the same moment
        raise ExtendNotAllowed(_("The sandbox was just extended; reload to see its time."))
    sandbox.extensions += 1
    return await extend_sandbox(sandbox, policy.extend_seconds)


# -- the queue -------------------------------------------------------------------------------------
_promote_locks: dict[int, asyncio.Lock] = {}


async def promote_queue() -> list[Sandbox]:
    """Start queued sandboxes, in queue order, while there is room; returns those started.

    Safe from several processes at once: a row moves from queued to starting in one guarded
    UPDATE, so each is started once."""
    lock = _promote_locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
    async with lock:
        chosen = await _choose_queued()
        if chosen:
            await asyncio.gather(*(_create_on_engine(s) for s in chosen))
        await broadcast_queue_positions()
        return chosen


@sync_to_async
def _choose_queued() -> list[Sandbox]:
    room = settings.SANDBOX_CAPACITY - capacity.learner_sandboxes_on_engine()
    chosen = []
    now = timezone.now()
    for sandbox in _queue_order():
        if room <= 0:
            break
        if Sandbox.objects.filter(pk=sandbox.pk, state=Sandbox.State.QUEUED).update(
                state=Sandbox.State.STARTING, started_at=now):
            sandbox.state, sandbox.started_at = Sandbox.State.STARTING, now
            sandbox.owner  # noqa: B018  (spec_for needs the name)
            chosen.append(sandbox)
            room -= 1
    return chosen


async def broadcast_queue_positions() -> None:
    """Tell every queued learner their place (positions move when anyone ahead leaves)."""
    order = await sync_to_async(_queue_order)()
    for position, sandbox in enumerate(order, start=1):
        await broadcast_state(sandbox, position=position)


# -- consoles, checks, activity ----------------------------------------------------------------------
async def console_ended(sandbox_id: uuid.UUID | str) -> Sandbox | None:
    """A console stream ended: if the shell exited, the sandbox is stopped (and cleaned up).

    Raises :class:`EngineUnavailable` when the engine does not answer: the sandbox is then left
    as it is (the reaper reconciles it when the engine is back)."""
    sandbox = await Sandbox.objects.filter(pk=sandbox_id).afirst()
    if sandbox is None or sandbox.state != Sandbox.State.RUNNING:
        return sandbox
    try:
        state = await get_backend(sandbox.workspace).status(sandbox.engine_ref)
    except EngineUnavailable:
        raise
    except BackendError:
        return sandbox
    if state != EngineState.RUNNING:
        reason = await _why_the_console_ended(sandbox)
        await stop_sandbox(sandbox, reason=reason, announce_stopping=False)
    return sandbox


# How long a killed console waits to see whether the engine itself is going away.
ENGINE_SHUTDOWN_GRACE_SECONDS = 5.0


async def _why_the_console_ended(sandbox: Sandbox) -> str:
    """The reason to show for a console that stopped. Raises EngineUnavailable if the engine is
    shutting down: it stops every container a moment before its API goes away, and those
    sandboxes are not the learner's doing (the reaper settles them when the engine is back)."""
    backend = get_backend(sandbox.workspace)
    code = await backend.exit_code(sandbox.engine_ref)
    if code is None or code < 128:
        return "The shell exited."
    deadline = asyncio.get_running_loop().time() + ENGINE_SHUTDOWN_GRACE_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.25)
        await backend.status(sandbox.engine_ref)  # EngineUnavailable once the engine is gone
    return f"The shell was stopped by signal {code - 128}."


async def run_script(sandbox: Sandbox, script: str, *, timeout: float | None = None) -> RunResult:
    """Run a check or setup script inside the sandbox (exec, never in the learner's TTY)."""
    if sandbox.state != Sandbox.State.RUNNING:
        raise BackendError(_("The sandbox is not running: start it first."))
    result = await get_backend(sandbox.workspace).run(
        sandbox.engine_ref, script, timeout=timeout or settings.CHECK_TIMEOUT_SECONDS
    )
    await touch(sandbox.id)
    return result


async def touch(sandbox_id) -> None:
    """Record learner activity (console input, a check, a gateway call)."""
    await Sandbox.objects.filter(pk=sandbox_id).aupdate(last_activity_at=timezone.now())


def gateway_hooks() -> SiteHooks:
    """What the Docker workspace gateway calls back: activity, console notices, idle timeouts."""
    return SiteHooks(touch=touch, notify=send_notice,
                     idle_seconds=lambda lesson: lifecycle.policy_for(lesson).idle_seconds)
