"""Shadow terminals on the real engine, through the real console websocket: the instructor of the
learner's classroom watches read-only, types only after taking control (the learner sees a
notice), and classmate, another classroom's instructor and an outsider get nothing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from classroom import actions as classroom_actions

from classroom import consoles as classroom_consoles
from sandbox import protocol
from sandbox.models import Sandbox
from tests.websockets import closed_with, connect_console, next_text, read_until

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_instructor_watches_read_only_then_takes_control_with_a_notice(
    console, classroom, learners_sandbox, owner, instructor
):
    learner = await connect_console(console, learners_sandbox, owner)
    await read_until(learner, rb"\$ ")
    watcher = await connect_console(console, learners_sandbox, instructor)

    await learner.send_to(bytes_data=b"echo learner-$((6*7))\r")
    assert b"learner-42" in await read_until(watcher, rb"learner-42")  # watched live

    # Read-only: the instructor's keystrokes never reach the shell.
    await watcher.send_to(bytes_data=b"echo sneaky-$((7*7))\r")
    await learner.send_to(bytes_data=b"echo marker-$((1+1))\r")
    seen = await read_until(learner, rb"marker-2\r\n")
    assert b"sneaky-49" not in seen
    await watcher.disconnect()

    # Take control: the learner is told, and a new attach of the instructor may type.
    room = await sync_to_async(lambda: classroom)()
    await classroom_consoles.take_control(room, learners_sandbox, instructor)
    notice = await next_text(learner)
    assert notice["type"] == "notice" and "has taken control" in notice["message"]
    controller = await connect_console(console, learners_sandbox, instructor)
    await controller.send_to(bytes_data=b"echo teacher-$((8*8))\r")
    assert b"teacher-64" in await read_until(learner, rb"teacher-64")

    await classroom_consoles.release_control(room, learners_sandbox, instructor)
    assert "gave the terminal back" in (await next_text(learner))["message"]
    await controller.disconnect()
    await learner.disconnect()


@pytest.mark.parametrize("who", ["classmate", "other_instructor", "outsider"])
async def test_nobody_else_may_watch(console, classroom, other_classroom, learners_sandbox, who, request):
    ws = await console(learners_sandbox.id, request.getfixturevalue(who))
    connected, _ = await ws.connect()
    assert connected
    await closed_with(ws, protocol.CLOSE_NOT_YOURS)


async def test_instructor_stops_a_learners_sandbox_and_the_console_hears_it(console, classroom, learners_sandbox, owner):
    learner = await connect_console(console, learners_sandbox, owner)
    await read_until(learner, rb"\$ ")
    await classroom_actions.stop_learner_sandbox(learners_sandbox)
    messages = [await next_text(learner) for _ in range(2)]
    assert messages[0]["type"] == "notice" and "stopped this sandbox" in messages[0]["message"]
    assert messages[1]["type"] == "state" and messages[1]["state"] in ("stopping", "stopped")
    await closed_with(learner, 1000)
    assert (await Sandbox.objects.aget(pk=learners_sandbox.pk)).state != Sandbox.State.RUNNING
