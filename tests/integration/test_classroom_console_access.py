"""An instructor's console that is already open on a learner's sandbox follows every change to
their access at once, on the real engine through the real console websocket: control given back,
it can no longer type but still watches; the learner removed, the lesson unassigned, the
instructor revoked or the class ended, it is closed with 4403. The learner's own console goes on."""

from __future__ import annotations


import pytest
from asgiref.sync import sync_to_async

from classroom import actions as classroom_actions

from classroom import consoles as classroom_consoles

from classroom import roster as classroom_roster
from classroom.models import Membership
from sandbox import protocol
from tests.websockets import closed_with, connect_console, read_until, texts_until

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def notice_containing(ws, text: str, timeout: float = 10.0) -> dict:
    """Read (acking output as xterm.js does) until a notice containing ``text`` arrives."""
    seen = await texts_until(ws, lambda event: event.get("type") == "notice" and text in event["message"], timeout)
    return seen[-1]


async def in_control(console, classroom, sandbox, learner, instructor):
    """The instructor has taken control; their console types into the learner's shell."""
    await classroom_consoles.take_control(classroom, sandbox, instructor)
    await notice_containing(learner, "has taken control")
    controller = await connect_console(console, sandbox, instructor)
    await controller.send_to(bytes_data=b"echo teacher-$((8*8))\r")
    await read_until(learner, rb"teacher-64")
    return controller


async def typing_does_not_reach(controller, learner, n: int) -> None:
    """What the controller types now never runs; the learner's next command does."""
    await controller.send_to(bytes_data=f"echo late-$(({n}*11))\r".encode())
    await learner.send_to(bytes_data=f"echo mark-$(({n}+1))\r".encode())
    seen = await read_until(learner, f"mark-{n + 1}\r\n".encode())
    assert f"late-{n * 11}".encode() not in seen


async def test_giving_control_back_stops_the_open_console_typing_but_it_still_watches(
    console, classroom, learners_sandbox, owner, instructor
):
    learner = await connect_console(console, learners_sandbox, owner)
    await read_until(learner, rb"\$ ")
    controller = await in_control(console, classroom, learners_sandbox, learner, instructor)

    await classroom_consoles.release_control(classroom, learners_sandbox, instructor)
    await notice_containing(controller, "watching read-only")
    await typing_does_not_reach(controller, learner, 4)
    await read_until(controller, rb"mark-5\r\n")  # still watching, on the same socket
    await controller.disconnect()
    await learner.disconnect()


def _remove_learner(classroom, owner):
    membership = Membership.objects.get(classroom=classroom, user=owner)
    classroom_roster.remove_member(classroom, membership.pk)


def _unassign_lesson(classroom, owner):
    classroom_roster.set_lessons(classroom, ["big-picture"])


def _revoke_instructor(classroom, owner):
    classroom_roster.grant_instructor(classroom.instructor, revoke=True)


@pytest.mark.parametrize("change", [_remove_learner, _unassign_lesson, _revoke_instructor])
async def test_a_change_that_ends_access_closes_the_open_console_at_once(
    console, classroom, learners_sandbox, owner, classmate, instructor, change
):
    learner = await connect_console(console, learners_sandbox, owner)
    await read_until(learner, rb"\$ ")
    controller = await in_control(console, classroom, learners_sandbox, learner, instructor)
    watcher = await connect_console(console, learners_sandbox, instructor)  # a second tab, read-only

    # A change that does not concern this sandbox leaves both open and in control.
    await sync_to_async(_remove_learner)(classroom, classmate)
    await controller.send_to(bytes_data=b"echo still-$((3*3))\r")
    await read_until(learner, rb"still-9")
    await read_until(watcher, rb"still-9")

    await sync_to_async(change)(classroom, owner)
    await closed_with(controller, protocol.CLOSE_NOT_YOURS)
    await closed_with(watcher, protocol.CLOSE_NOT_YOURS)
    # The learner's own console goes on; a new instructor console is refused.
    await learner.send_to(bytes_data=b"echo mine-$((6*6))\r")
    await read_until(learner, rb"mine-36")
    again = await console(learners_sandbox.id, instructor)
    await again.connect()
    await closed_with(again, protocol.CLOSE_NOT_YOURS)
    await learner.disconnect()


async def test_ending_the_class_closes_the_instructors_console_before_the_sandboxes_stop(
    console, classroom, learners_sandbox, owner, instructor
):
    learner = await connect_console(console, learners_sandbox, owner)
    await read_until(learner, rb"\$ ")
    controller = await in_control(console, classroom, learners_sandbox, learner, instructor)
    watcher = await connect_console(console, learners_sandbox, instructor)

    assert await classroom_actions.stop_all(classroom) == 1
    await closed_with(controller, protocol.CLOSE_NOT_YOURS)
    await closed_with(watcher, protocol.CLOSE_NOT_YOURS)
    await notice_containing(learner, "The class has ended")
    await closed_with(learner, 1000)
