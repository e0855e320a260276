"""What open consoles of a sandbox are told: its state, its clocks and notices, and a read-only
viewer's request for a redraw. Events go through the channel layer to the sandbox's group (every
viewer, in every server process); they never carry terminal bytes, which go straight from the
engine to each viewer."""

from __future__ import annotations

import datetime as dt
import uuid

from channels.layers import get_channel_layer
from django.utils import timezone

from . import lifecycle
from .models import Sandbox


def group_name(sandbox_id: uuid.UUID | str) -> str:
    return f"sandbox-{sandbox_id}"


async def broadcast_state(sandbox: Sandbox, *, position: int | None = None) -> None:
    """Tell every open console of this sandbox its new state (events, never terminal bytes)."""
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"type": "sandbox.state", "state": sandbox.state, "reason": sandbox.failure_reason}
    if position is not None:
        event["position"] = position
    await layer.group_send(group_name(sandbox.id), event)


async def broadcast_timer(sandbox: Sandbox) -> None:
    """Tell open consoles when the sandbox will stop (after an extension or activity)."""
    layer = get_channel_layer()
    if layer is None:
        return
    await layer.group_send(group_name(sandbox.id), {"type": "sandbox.timer", **timer_fields(sandbox)})


def timer_fields(sandbox: Sandbox, now: dt.datetime | None = None) -> dict:
    """The two clocks a learner sees: the session's end (Extend moves it) and the idle stop (any
    activity starts it again; ``idle_seconds`` lets the page restart it on each keystroke)."""
    policy = lifecycle.policy_for(sandbox.lesson)
    now = now or timezone.now()
    return {
        "seconds_left": lifecycle.seconds_left(sandbox, policy, now),
        "session_seconds_left": lifecycle.session_seconds_left(sandbox, now),
        "idle_seconds_left": lifecycle.idle_seconds_left(sandbox, policy, now),
        "idle_seconds": policy.idle_seconds or None,
        "extensions_left": lifecycle.extensions_left(sandbox, policy),
    }


async def send_notice(sandbox_id, message: str) -> None:
    """Show a message on every open console of this sandbox (instructor broadcast, take-over)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group_name(sandbox_id), {"type": "sandbox.notice", "message": message})


async def ask_for_redraw(sandbox_id, reply_to: str) -> None:
    """A read-only viewer has just attached: ask the sandbox's writable viewers (in every process)
    for a redraw; each answers ``reply_to`` (``answer_redraw``)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group_name(sandbox_id), {"type": "sandbox.redraw", "reply_to": reply_to})


async def answer_redraw(reply_to: str, event: dict) -> None:
    """A writable viewer's answer to one read-only viewer (``sandbox.redraw.answer``, with the
    size to redraw at when that viewer is to redraw)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.send(reply_to, event)
