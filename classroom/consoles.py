"""Instructors watch learners' consoles, and take control with a notice to the learner."""

from __future__ import annotations


from asgiref.sync import sync_to_async

from sandbox import events as sandbox_events
from sandbox import texts
from sandbox.models import Sandbox

from .models import AssignedLesson, Classroom, Membership, TakeOver
from .roster import NotFound


def learner_sandbox(classroom: Classroom, sandbox_id, *, console: bool = False) -> Sandbox:
    """A sandbox of a member of this classroom for one of its lessons; 404 otherwise. For the
    console (watch, take control) the class must not have ended."""
    if console and classroom.ended_at is not None:
        raise NotFound("This class has ended.")
    sandbox = (
        Sandbox.objects.select_related("owner")
        .filter(
            pk=sandbox_id,
            owner__classroom_memberships__classroom=classroom,
            lesson__in=AssignedLesson.objects.filter(classroom=classroom).values("lesson"),
        )
        .first()
    )
    if sandbox is None:
        raise NotFound("No such sandbox in this classroom.")
    return sandbox


def watchable_sandboxes(classroom: Classroom) -> list[dict]:
    """The sandboxes an instructor can watch in the grid: members' live sandboxes for the class's
    lessons, ordered by the learner's display name then lesson, each with the name to show.
    Two queries whatever the class size."""
    names = dict(Membership.objects.filter(classroom=classroom).values_list("user_id", "display_name"))
    sandboxes = Sandbox.objects.filter(
        owner_id__in=list(names),
        lesson__in=AssignedLesson.objects.filter(classroom=classroom).values("lesson"),
        state__in=Sandbox.LIVE_STATES,
    ).order_by("created_at")
    rows = [{"sandbox": sandbox, "name": names[sandbox.owner_id]} for sandbox in sandboxes]
    return sorted(rows, key=lambda row: (row["name"].casefold(), row["sandbox"].lesson))


def instructor_name(user) -> str:
    return user.get_full_name() or user.get_username()


async def take_control(classroom: Classroom, sandbox: Sandbox, instructor) -> None:
    await sync_to_async(TakeOver.objects.get_or_create)(sandbox=sandbox, instructor=instructor, classroom=classroom)
    await sandbox_events.send_notice(
        sandbox.id, texts.render(texts.NOTICE_TOOK_CONTROL, name=instructor_name(instructor))
    )


async def release_control(classroom: Classroom, sandbox: Sandbox, instructor) -> None:
    deleted, _rows = await TakeOver.objects.filter(sandbox=sandbox, instructor=instructor, classroom=classroom).adelete()
    if deleted:
        await sandbox_events.send_notice(
            sandbox.id, texts.render(texts.NOTICE_GAVE_BACK, name=instructor_name(instructor))
        )


def has_control(sandbox: Sandbox, instructor) -> bool:
    return TakeOver.objects.filter(sandbox=sandbox, instructor=instructor).exists()
