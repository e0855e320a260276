"""What an instructor does to the whole class or one learner's sandbox: broadcast, stop, reset,
extend, end and reopen the class."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sandbox import events as sandbox_events
from sandbox import services as sandbox_services
from sandbox import texts
from sandbox.models import Sandbox

from .models import AssignedLesson, Classroom, TakeOver
from .roster import ClassroomError

MAX_BROADCAST_CHARS = 500


@sync_to_async
def _live_sandboxes(classroom: Classroom) -> list[Sandbox]:
    return list(
        Sandbox.objects.select_related("owner").filter(
            owner__classroom_memberships__classroom=classroom,
            lesson__in=AssignedLesson.objects.filter(classroom=classroom).values("lesson"),
            state__in=Sandbox.LIVE_STATES,
        )
    )


async def broadcast(classroom: Classroom, message: str) -> int:
    """Show the message on every open console of the class; returns how many sandboxes got it."""
    message = " ".join((message or "").split())
    if not message:
        raise ClassroomError(_("Write a message to send."))
    if len(message) > MAX_BROADCAST_CHARS:
        raise ClassroomError(_("Messages are limited to %(limit)d characters.") % {"limit": MAX_BROADCAST_CHARS})
    sandboxes = await _live_sandboxes(classroom)
    for sandbox in sandboxes:
        await sandbox_events.send_notice(sandbox.id, message)
    return len(sandboxes)


async def stop_learner_sandbox(sandbox: Sandbox) -> None:
    await sandbox_events.send_notice(sandbox.id, texts.NOTICE_INSTRUCTOR_STOPPED)
    await sandbox_services.stop_sandbox(sandbox, reason=texts.STOPPED_BY_INSTRUCTOR)


async def reset_learner_sandbox(sandbox: Sandbox) -> None:
    await sandbox_events.send_notice(sandbox.id, texts.NOTICE_INSTRUCTOR_RESETTING)
    await sandbox_services.reset_sandbox(sandbox)


async def extend_class(classroom: Classroom, seconds: int) -> int:
    """Give every live sandbox of the class more time; returns how many were extended."""
    if not 60 <= seconds <= settings.CLASSROOM_MAX_EXTEND_SECONDS:
        raise ClassroomError(_("Extend by 1 to %(limit)d minutes.") % {"limit": settings.CLASSROOM_MAX_EXTEND_SECONDS // 60})
    sandboxes = await _live_sandboxes(classroom)
    for sandbox in sandboxes:
        await sandbox_services.extend_sandbox(sandbox, seconds)
        await sandbox_events.send_notice(sandbox.id, texts.render(texts.NOTICE_EXTENDED, minutes=seconds // 60))
    return len(sandboxes)


@sync_to_async
def _mark_ended(classroom: Classroom) -> None:
    # One transaction: the access events (classroom.access_events) go out when it commits, so
    # open consoles and dashboards are told before the slow part, stopping the sandboxes.
    with transaction.atomic():
        classroom.ended_at = timezone.now()
        classroom.open_for_joining = False
        classroom.save(update_fields=["ended_at", "open_for_joining"])
        TakeOver.objects.filter(classroom=classroom).delete()


def reopen(classroom: Classroom) -> None:
    classroom.ended_at = None
    classroom.save(update_fields=["ended_at"])


async def stop_all(classroom: Classroom) -> int:
    """The end of the class: nobody new joins, the instructor's consoles on learners' sandboxes
    and the live dashboard close at once, then every live sandbox of its learners stops (progress
    is kept). The dashboard page and the CSV stay for the results."""
    await _mark_ended(classroom)
    sandboxes = await _live_sandboxes(classroom)
    for sandbox in sandboxes:
        await sandbox_events.send_notice(sandbox.id, texts.NOTICE_CLASS_ENDED)
        await sandbox_services.stop_sandbox(sandbox, reason=texts.CLASS_ENDED)
    return len(sandboxes)
