"""The only API that views, consumers and commands call to touch sandboxes.

Database rows say what a learner has; the backend says what the engine holds. Every function here
keeps the two in step and turns engine failures into a state and a reason the learner can read.
"""

from __future__ import annotations

import logging
import uuid
from functools import cache

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .backends.base import BackendError, Limits, RunResult, SandboxBackend, SandboxSpec
from .models import Sandbox

log = logging.getLogger(__name__)


class SandboxLimitReached(Exception):
    """The learner already has as many live sandboxes as allowed."""


@cache
def get_backend(workspace: str) -> SandboxBackend:
    try:
        path = settings.SANDBOX_BACKENDS[workspace]
    except KeyError:
        raise BackendError(f"no backend is configured for the {workspace!r} workspace") from None
    return import_string(path)()


def group_name(sandbox_id: uuid.UUID | str) -> str:
    return f"sandbox-{sandbox_id}"


async def broadcast_state(sandbox: Sandbox) -> None:
    """Tell every open console of this sandbox its new state (events, never terminal bytes)."""
    layer = get_channel_layer()
    if layer is None:
        return
    await layer.group_send(
        group_name(sandbox.id),
        {"type": "sandbox.state", "state": sandbox.state, "reason": sandbox.failure_reason},
    )


async def send_notice(sandbox_id, message: str) -> None:
    """Show a message on every open console of this sandbox (instructor broadcast, take-over)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group_name(sandbox_id), {"type": "sandbox.notice", "message": message})


def spec_for(sandbox: Sandbox) -> SandboxSpec:
    return SandboxSpec(
        sandbox_id=str(sandbox.id),
        owner_id=sandbox.owner_id,
        owner_name=sandbox.owner.get_username(),
        lesson=sandbox.lesson,
        workspace=sandbox.workspace,
        image=sandbox.image,
        limits=Limits(**settings.SANDBOX_LIMITS),
    )


def image_tag(name: str) -> str:
    """Full tag of a project-built sandbox image, e.g. ``base`` -> ``tutorial/base:latest``."""
    if ":" in name or "/" in name:
        return name
    return f"{settings.SANDBOX_IMAGE_PREFIX}/{name}:latest"


@sync_to_async
def _claim_row(user, lesson: str, workspace: str, image: str) -> tuple[Sandbox, bool]:
    """Find the learner's live sandbox for this lesson, or make a starting row for a new one."""
    with transaction.atomic():
        existing = (
            Sandbox.objects.select_for_update()
            .filter(owner=user, lesson=lesson, state__in=Sandbox.LIVE_STATES)
            .first()
        )
        if existing:
            return existing, False
        live = Sandbox.objects.filter(owner=user, state__in=Sandbox.LIVE_STATES).count()
        if live >= settings.SANDBOXES_PER_USER:
            raise SandboxLimitReached(
                f"You already have {live} sandboxes running; stop one to start another."
            )
        sandbox = Sandbox.objects.create(owner=user, lesson=lesson, workspace=workspace, image=image_tag(image))
        return sandbox, True


@sync_to_async
def _save(sandbox: Sandbox, *fields: str) -> None:
    sandbox.save(update_fields=list(fields))


@sync_to_async
def _load_owner(sandbox: Sandbox) -> None:
    # spec_for reads the owner's name; fetch it here, outside the event loop.
    sandbox.owner  # noqa: B018


async def start_sandbox(user, lesson: str, workspace: str, image: str) -> Sandbox:
    """Return the learner's running sandbox for this lesson, creating it if needed.

    On an engine failure the row is marked failed with the reason and returned, never raised:
    the page shows the reason.
    """
    sandbox, created = await _claim_row(user, lesson, workspace, image)
    if not created and sandbox.state == Sandbox.State.RUNNING:
        return sandbox
    await _create_on_engine(sandbox)
    return sandbox


async def _create_on_engine(sandbox: Sandbox) -> None:
    await _load_owner(sandbox)
    sandbox.state = Sandbox.State.STARTING
    sandbox.failure_reason = ""
    await _save(sandbox, "state", "failure_reason")
    try:
        ref = await get_backend(sandbox.workspace).create(spec_for(sandbox))
    except BackendError as exc:
        log.warning("sandbox %s failed to start: %s", sandbox.id, exc)
        sandbox.state = Sandbox.State.FAILED
        sandbox.failure_reason = str(exc)
        await _save(sandbox, "state", "failure_reason")
        await broadcast_state(sandbox)
        return
    now = timezone.now()
    sandbox.engine_ref = ref
    sandbox.state = Sandbox.State.RUNNING
    sandbox.started_at = now
    sandbox.last_activity_at = now
    sandbox.stopped_at = None
    await _save(sandbox, "engine_ref", "state", "started_at", "last_activity_at", "stopped_at")
    await broadcast_state(sandbox)


async def stop_sandbox(sandbox: Sandbox, reason: str = "") -> Sandbox:
    """Stop the sandbox and remove everything it made on the engine. Progress is kept elsewhere."""
    # Save and announce first: consoles (on any server process) hear "stopped" before their
    # attach ends, and console_ended() then finds the row stopped instead of stopping it again.
    sandbox.state = Sandbox.State.STOPPED
    sandbox.stopped_at = timezone.now()
    sandbox.failure_reason = reason
    await _save(sandbox, "state", "stopped_at", "failure_reason")
    await broadcast_state(sandbox)
    try:
        await get_backend(sandbox.workspace).destroy(str(sandbox.id))
    except BackendError as exc:
        # The engine may be down: the row still stops; the reaper removes leftovers later.
        log.warning("could not remove sandbox %s now: %s", sandbox.id, exc)
    return sandbox


async def reset_sandbox(sandbox: Sandbox) -> Sandbox:
    """Throw the sandbox away and give the learner a fresh one for the same lesson."""
    await get_backend(sandbox.workspace).destroy(str(sandbox.id))
    await _create_on_engine(sandbox)
    return sandbox


async def restart_sandbox(sandbox: Sandbox) -> Sandbox:
    """Start a stopped or failed sandbox again (a new container under the same id)."""
    await _claim_restart(sandbox)
    await _create_on_engine(sandbox)
    return sandbox


@sync_to_async
def _claim_restart(sandbox: Sandbox) -> None:
    live = Sandbox.objects.filter(owner_id=sandbox.owner_id, state__in=Sandbox.LIVE_STATES).exclude(pk=sandbox.pk).count()
    if live >= settings.SANDBOXES_PER_USER:
        raise SandboxLimitReached(f"You already have {live} sandboxes running; stop one to start another.")


async def console_ended(sandbox_id: uuid.UUID | str) -> Sandbox | None:
    """A console stream ended: if the shell exited, the sandbox is stopped (and cleaned up)."""
    sandbox = await Sandbox.objects.filter(pk=sandbox_id).afirst()
    if sandbox is None or sandbox.state != Sandbox.State.RUNNING:
        return sandbox
    from .backends.base import EngineState

    try:
        state = await get_backend(sandbox.workspace).status(sandbox.engine_ref)
    except BackendError:
        return sandbox
    if state != EngineState.RUNNING:
        await stop_sandbox(sandbox, reason="The shell exited.")
    return sandbox


async def run_script(sandbox: Sandbox, script: str, *, timeout: float | None = None) -> RunResult:
    """Run a check or setup script inside the sandbox (exec, never in the learner's TTY)."""
    if sandbox.state != Sandbox.State.RUNNING:
        raise BackendError("The sandbox is not running: start it first.")
    result = await get_backend(sandbox.workspace).run(
        sandbox.engine_ref, script, timeout=timeout or settings.CHECK_TIMEOUT_SECONDS
    )
    await touch(sandbox.id)
    return result


async def touch(sandbox_id) -> None:
    """Record learner activity (console input, a check, a gateway call)."""
    await Sandbox.objects.filter(pk=sandbox_id).aupdate(last_activity_at=timezone.now())
