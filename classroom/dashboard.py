"""The instructor's dashboard snapshot: a fixed number of queries whatever the class size (tests
hold them with ``assertNumQueries``); live updates come from ``classroom.signals`` through the
channel layer, not from re-reading."""

from __future__ import annotations


from django.conf import settings
from django.db.models import Count, Max, Q

from lessons.models import CheckAttempt, StepProgress
from sandbox.models import Sandbox

from .models import Classroom, Membership
from .roster import assigned_lessons


# What counts in the instructor's numbers. An ERROR attempt is a Check pressed while the sandbox
# was not running (or the engine failed): the learner is told, but the check never ran, so it is
# neither an attempt at the step nor a mistake.
FAILED_OUTCOMES = (CheckAttempt.Outcome.FAILED, CheckAttempt.Outcome.TIMED_OUT)
CHECK_RAN = (CheckAttempt.Outcome.PASSED, *FAILED_OUTCOMES)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def dashboard_snapshot(classroom: Classroom) -> dict:
    """Everything the dashboard grid shows, as JSON-ready data, in a fixed number of queries.

    Later changes arrive as events (``classroom.signals``) that the page applies to this.
    """
    lessons = assigned_lessons(classroom)  # 1 query (assigned lessons)
    slugs = [lesson.slug for lesson in lessons]
    members = list(Membership.objects.filter(classroom=classroom).values("id", "user_id", "display_name"))  # 1
    user_ids = [m["user_id"] for m in members]
    member_filter = Q(user_id__in=Membership.objects.filter(classroom=classroom).values("user_id"))

    cells: dict[str, dict] = {}
    progress_rows = StepProgress.objects.filter(member_filter, lesson__in=slugs).annotate(
        attempt_count=Count("attempts", filter=Q(attempts__outcome__in=CHECK_RAN)),
        failures=Count("attempts", filter=Q(attempts__outcome__in=FAILED_OUTCOMES)),
        last_attempt_at=Max("attempts__at"),
    )  # 1
    for p in progress_rows:
        cells[f"{p.user_id}:{p.lesson}:{p.step}"] = {
            "opened_at": _iso(p.first_opened_at),
            "passed_at": _iso(p.passed_at),
            "hints_used": p.hints_used,
            "solution_viewed": p.solution_viewed_at is not None,
            "attempts": p.attempt_count,
            "failures": p.failures,
            "last_attempt_at": _iso(p.last_attempt_at),
            "feedback": "",
            "outcome": "",
        }
    # The latest attempt's outcome and feedback per cell, newest first (1 query).
    latest = (
        CheckAttempt.objects.filter(progress__in=StepProgress.objects.filter(member_filter, lesson__in=slugs),
                                    outcome__in=CHECK_RAN)
        .order_by("progress_id", "-at", "-id")
        .values("progress__user_id", "progress__lesson", "progress__step", "outcome", "feedback")
    )
    for a in latest:
        key = f"{a['progress__user_id']}:{a['progress__lesson']}:{a['progress__step']}"
        cell = cells.get(key)
        if cell is not None and not cell["outcome"]:
            cell["outcome"] = a["outcome"]
            cell["feedback"] = (a["feedback"] or "")[:300]

    sandboxes: dict[str, dict] = {}
    for s in (
        Sandbox.objects.filter(owner_id__in=user_ids, lesson__in=slugs)
        .order_by("created_at")
        .values("id", "owner_id", "lesson", "state", "last_activity_at")
    ):  # 1; the newest row per learner and lesson wins
        sandboxes[f"{s['owner_id']}:{s['lesson']}"] = {
            "sandbox": str(s["id"]),
            "state": s["state"],
            "at": _iso(s["last_activity_at"]),
        }
    return {
        "classroom": classroom.pk,
        "lessons": [
            # "language": the language of the titles (an untranslated lesson's are in the original's).
            {"slug": lesson.slug, "title": lesson.title, "language": lesson.language,
             "steps": [{"slug": s.slug, "title": s.title} for s in lesson.steps]}
            for lesson in lessons
        ],
        "members": [{"id": m["id"], "user": m["user_id"], "name": m["display_name"]} for m in members],
        "cells": cells,
        "sandboxes": sandboxes,
        "idle_seconds": settings.CLASSROOM_IDLE_SECONDS,
    }


def activity(classroom: Classroom) -> dict[str, dict]:
    """Sandbox state and last activity per learner and lesson (the page polls this: console
    input is recorded without a signal, so activity is not pushed)."""
    slugs = classroom.lesson_slugs()
    out: dict[str, dict] = {}
    for s in (
        Sandbox.objects.filter(owner__classroom_memberships__classroom=classroom, lesson__in=slugs)
        .order_by("created_at")
        .values("id", "owner_id", "lesson", "state", "last_activity_at")
    ):
        out[f"{s['owner_id']}:{s['lesson']}"] = {"sandbox": str(s["id"]), "state": s["state"], "at": _iso(s["last_activity_at"])}
    return out
