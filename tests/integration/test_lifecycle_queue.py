"""Past the global capacity a start joins a queue, sees its position live over the console
websocket, and starts when room frees; learners without a sandbox go first."""

from __future__ import annotations

import pytest

from sandbox import services, tasks
from sandbox.models import Sandbox
from tests.websockets import read_until, texts_until

from .lifecycle_helpers import cleanup, make_user, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_queue_positions_are_pushed_and_the_next_starts_when_room_frees(settings, console, base_image, cleanup):
    settings.SANDBOX_CAPACITY = 1
    first_user, second_user, third_user = await make_user(), await make_user(), await make_user()
    first = await start(first_user)
    second, third = await start(second_user), await start(third_user)
    cleanup.extend([first, second, third])
    assert first.state == Sandbox.State.RUNNING
    assert (second.state, third.state) == (Sandbox.State.QUEUED, Sandbox.State.QUEUED)
    assert (await services.queue_position(second), await services.queue_position(third)) == (1, 2)

    ws_second, ws_third = await console(second.id, second_user), await console(third.id, third_user)
    assert (await ws_second.connect())[0] and (await ws_third.connect())[0]
    assert (await texts_until(ws_second, lambda m: m["type"] == "state"))[-1] == {
        "type": "state", "state": "queued", "position": 1}
    assert (await texts_until(ws_third, lambda m: m["type"] == "state"))[-1]["position"] == 2

    await services.stop_sandbox(first)  # room frees: the queue moves without anyone reloading
    seen = await texts_until(ws_second, lambda m: m.get("state") == "running")
    assert [m["state"] for m in seen] == ["starting", "running"]
    await ws_second.send_to(text_data='{"type": "resize", "cols": 80, "rows": 24}')
    await read_until(ws_second, rb"\$ ")  # the waiting console attached to the new sandbox
    assert (await texts_until(ws_third, lambda m: m.get("position") == 1))[-1]["state"] == "queued"

    await tasks.wait_for_background()
    await second.arefresh_from_db()
    await third.arefresh_from_db()
    assert (second.state, third.state) == (Sandbox.State.RUNNING, Sandbox.State.QUEUED)
    await ws_second.disconnect()

    # Leaving the queue is a stop; the third then starts when the second stops.
    await services.stop_sandbox(second)
    await tasks.wait_for_background()
    await third.arefresh_from_db()
    assert third.state == Sandbox.State.RUNNING, third.failure_reason
    await ws_third.disconnect()
    await services.stop_sandbox(third)


async def test_a_learner_without_a_sandbox_goes_before_one_who_has_one(settings, base_image, cleanup):
    settings.SANDBOX_CAPACITY, settings.SANDBOXES_PER_USER = 1, 2
    busy, newcomer = await make_user(), await make_user()
    running = await start(busy)
    second_lesson = await start(busy, "big-picture")  # queued first
    newcomers = await start(newcomer)  # queued later, but holds nothing yet
    cleanup.extend([running, second_lesson, newcomers])
    assert (await services.queue_position(newcomers), await services.queue_position(second_lesson)) == (1, 2)
    # A second start of the same lesson keeps the learner's place instead of queueing twice.
    again = await start(newcomer)
    assert again.id == newcomers.id and await services.queue_position(again) == 1

    await services.stop_sandbox(second_lesson)  # leave the queue
    assert await services.queue_position(newcomers) == 1
    await services.stop_sandbox(running)
    await tasks.wait_for_background()
    await newcomers.arefresh_from_db()
    assert newcomers.state == Sandbox.State.RUNNING
    await services.stop_sandbox(newcomers)
