"""Progress and sandbox events for the live dashboard, hooked on the lesson engine's rows.

Each saved ``StepProgress``, new ``CheckAttempt`` and sandbox state change becomes one compact
event sent, after the transaction commits, to the channel-layer group of every classroom the
learner is in that has the lesson assigned. The event carries everything a dashboard cell shows,
so dashboards never query the database per event. Cost per saved row: one query (the learner's
classrooms for that lesson).
"""

from __future__ import annotations

import asyncio
import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.db.models.signals import post_save

from lessons.models import CheckAttempt, StepProgress
from sandbox.models import Sandbox

from .models import AssignedLesson, Membership, group_name

log = logging.getLogger(__name__)

# The dashboard shows the start of the feedback; the full text is one click away in the CSV.
FEEDBACK_PREVIEW_CHARS = 300
EVENT_TYPE = "classroom.event"  # handled by DashboardConsumer.classroom_event


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def classrooms_watching(user_id: int, lesson: str) -> list[int]:
    """Ids of the classrooms the learner is in that have this lesson assigned (one query, in SQL
    made once per database kind: every Start and every state change of a sandbox asks, and the
    ORM took longer to build the join than the database to run it)."""
    sql = _watching_sql.get(connection.vendor)
    if sql is None:
        quote = connection.ops.quote_name
        member, assigned = Membership._meta, AssignedLesson._meta

        def column(meta, name):
            return f"{quote(meta.db_table)}.{quote(meta.get_field(name).column)}"

        sql = (f"SELECT {column(member, 'classroom')} FROM {quote(member.db_table)} "
               f"INNER JOIN {quote(assigned.db_table)} ON {column(assigned, 'classroom')} = {column(member, 'classroom')} "
               f"WHERE {column(member, 'user')} = %s AND {column(assigned, 'lesson')} = %s")
        _watching_sql[connection.vendor] = sql
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, lesson])
        return [row[0] for row in cursor.fetchall()]


_watching_sql: dict[str, str] = {}


def progress_event(progress) -> dict:
    return {
        "kind": "progress",
        "user": progress.user_id,
        "lesson": progress.lesson,
        "step": progress.step,
        "opened_at": _iso(progress.first_opened_at),
        "passed_at": _iso(progress.passed_at),
        "hints_used": progress.hints_used,
        "solution_viewed": progress.solution_viewed_at is not None,
    }


def attempt_event(attempt, progress) -> dict:
    return {
        "kind": "attempt",
        "user": progress.user_id,
        "lesson": progress.lesson,
        "step": progress.step,
        "outcome": attempt.outcome,
        "at": _iso(attempt.at),
        "feedback": (attempt.feedback or "")[:FEEDBACK_PREVIEW_CHARS],
    }


def sandbox_event(sandbox) -> dict:
    return {
        "kind": "sandbox",
        "user": sandbox.owner_id,
        "lesson": sandbox.lesson,
        "sandbox": str(sandbox.id),
        "state": sandbox.state,
        "at": _iso(sandbox.last_activity_at),
    }


def send_to_classrooms(classroom_ids: list[int], event: dict) -> None:
    """Send the event to each classroom's group, from sync or async code, never raising."""
    message = {"type": EVENT_TYPE, "event": {**event, "sent_at": time.time()}}
    send_to_groups([(group_name(classroom_id), message) for classroom_id in classroom_ids])


def send_to_groups(messages: list[tuple[str, dict]]) -> None:
    """Send each (group, message) through the channel layer, from sync or async code, never raising."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all() -> None:
        for group, message in messages:
            await layer.group_send(group, message)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    try:
        if loop is not None:
            # Called on the event loop's own thread (async_to_sync would refuse): schedule it.
            task = loop.create_task(send_all())
            _pending.add(task)
            task.add_done_callback(_pending.discard)
        else:
            # A plain thread or a sync_to_async worker: async_to_sync runs it on the right loop.
            async_to_sync(send_all)()
    except Exception:  # the dashboard is a view of progress: it must never break a learner's check
        log.exception("could not send a classroom event")


_pending: set[asyncio.Task] = set()  # asyncio keeps tasks only weakly


def _dispatch(user_id: int, lesson: str, event: dict) -> None:
    classroom_ids = classrooms_watching(user_id, lesson)
    if classroom_ids:
        transaction.on_commit(lambda: send_to_classrooms(classroom_ids, event))


def on_progress_saved(sender, instance, raw=False, **kwargs) -> None:
    if raw:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and set(update_fields) <= {"setup_ran_in"}:
        return  # bookkeeping the dashboard does not show
    _dispatch(instance.user_id, instance.lesson, progress_event(instance))


def on_attempt_saved(sender, instance, created=False, raw=False, **kwargs) -> None:
    if raw or not created:
        return
    progress = instance.progress  # cached: record_attempt passes the row it holds
    _dispatch(progress.user_id, progress.lesson, attempt_event(instance, progress))


def on_sandbox_saved(sender, instance, raw=False, **kwargs) -> None:
    if raw:
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and "state" not in update_fields:
        return
    if instance.owner_id is None:
        return  # an unclaimed warm-pool sandbox belongs to no learner yet
    _dispatch(instance.owner_id, instance.lesson, sandbox_event(instance))


def connect() -> None:
    post_save.connect(on_progress_saved, sender=StepProgress, dispatch_uid="classroom-progress")
    post_save.connect(on_attempt_saved, sender=CheckAttempt, dispatch_uid="classroom-attempt")
    post_save.connect(on_sandbox_saved, sender=Sandbox, dispatch_uid="classroom-sandbox")
