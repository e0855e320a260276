"""Classroom logic: who teaches what, joining, the dashboard snapshot, insights, class actions.

Views and consumers call these and only render. Every read for the dashboard is a fixed number
of queries whatever the class size (tests hold them with ``assertNumQueries``); live updates come
from ``classroom.signals`` through the channel layer, not from re-reading.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import statistics
from collections import Counter, defaultdict

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import guests
from lessons.content_loader import Lesson, get_lesson
from lessons.models import CheckAttempt, StepProgress
from sandbox import events as sandbox_events
from sandbox import services as sandbox_services
from sandbox import texts
from sandbox.models import Sandbox

from .models import INSTRUCTORS_GROUP, AssignedLesson, Classroom, Membership, TakeOver, new_join_code  # noqa: F401
from .permissions import ainstructor_console_access, instructor_console_access, taught_classrooms  # noqa: F401

MAX_DISPLAY_NAME = 80
MAX_BROADCAST_CHARS = 500


class ClassroomError(ValueError):
    """Bad input for a classroom action; the message is shown to the user."""


# --- Who is an instructor ---------------------------------------------------------------------


def is_instructor(user) -> bool:
    """Superusers and members of the ``instructors`` group (``manage.py grant_instructor``)."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=INSTRUCTORS_GROUP).exists()


def grant_instructor(user, *, revoke: bool = False) -> None:
    group, _created = Group.objects.get_or_create(name=INSTRUCTORS_GROUP)
    (user.groups.remove if revoke else user.groups.add)(group)


def classroom_for_instructor(user, classroom_id: int) -> Classroom:
    """The classroom if ``user`` teaches it and still holds the instructor role; 404 for everyone
    else (no hint that it exists), a revoked instructor included."""
    classroom = taught_classrooms(user).filter(pk=classroom_id).first()
    if classroom is None:
        raise Http404("No such classroom.")
    return classroom


def membership_for_learner(user, classroom_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("classroom").filter(classroom_id=classroom_id, user_id=user.pk).first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise Http404("No such classroom.")
    return membership


# --- Creating and joining ---------------------------------------------------------------------


def assigned_lessons(classroom: Classroom) -> list[Lesson]:
    """The classroom's lessons that exist in the curriculum, in the instructor's order."""
    lessons = []
    for slug in classroom.lesson_slugs():
        lesson = get_lesson(slug)
        if lesson is not None:
            lessons.append(lesson)
    return lessons


def create_classroom(instructor, name: str, lesson_slugs: list[str]) -> Classroom:
    name = (name or "").strip()
    if not name:
        raise ClassroomError(_("Give the classroom a name."))
    if not lesson_slugs:
        raise ClassroomError(_("Assign at least one lesson."))
    unknown = [slug for slug in lesson_slugs if get_lesson(slug) is None]
    if unknown:
        raise ClassroomError(_("No such lesson: %(slugs)s.") % {"slugs": ", ".join(unknown)})
    with transaction.atomic():
        classroom = Classroom.objects.create(name=name[:200], instructor=instructor)
        set_lessons(classroom, lesson_slugs)
    return classroom


def set_lessons(classroom: Classroom, lesson_slugs: list[str]) -> None:
    seen = list(dict.fromkeys(lesson_slugs))
    with transaction.atomic():
        AssignedLesson.objects.filter(classroom=classroom).exclude(lesson__in=seen).delete()
        for position, slug in enumerate(seen):
            AssignedLesson.objects.update_or_create(classroom=classroom, lesson=slug, defaults={"position": position})


def classroom_by_code(code: str) -> Classroom | None:
    code = (code or "").strip().upper().replace("-", "").replace(" ", "")
    if not code:
        return None
    return Classroom.objects.filter(join_code=code).first()


def clean_display_name(name: str, fallback: str) -> str:
    name = " ".join((name or "").split())[:MAX_DISPLAY_NAME]
    return name or fallback


def default_display_name(user) -> str:
    """The name a learner is shown by when they give none: the one they chose in another class,
    their full name, or their username (never a guest's generated ``guest-…`` one)."""
    earlier = Membership.objects.filter(user_id=user.pk).order_by("-joined_at").values_list("display_name", flat=True).first()
    if earlier:
        return earlier
    if user.get_full_name():
        return user.get_full_name()
    return "" if guests.is_guest(user) else user.get_username()


def learner_name(classroom: Classroom, user) -> str:
    """How the instructor's pages and messages name a learner: their display name in this class."""
    name = Membership.objects.filter(classroom=classroom, user_id=user.pk).values_list("display_name", flat=True).first()
    return name or default_display_name(user) or user.get_username()


def join(classroom: Classroom, user, display_name: str = "") -> Membership:
    """Add the learner (idempotent); a closed classroom refuses newcomers."""
    existing = Membership.objects.filter(classroom=classroom, user=user).first()
    if existing:
        return existing
    if not classroom.open_for_joining:
        raise ClassroomError(_("This classroom is closed to new learners; ask your instructor."))
    if classroom.instructor_id == user.pk:
        raise ClassroomError(_("You teach this classroom: open its dashboard instead."))
    name = clean_display_name(display_name, default_display_name(user))
    if not name:
        raise ClassroomError(_("Choose the name your instructor will see."))
    try:
        with transaction.atomic():
            return Membership.objects.create(classroom=classroom, user=user, display_name=name)
    except IntegrityError:  # joined twice at once
        return Membership.objects.get(classroom=classroom, user=user)


def remove_member(classroom: Classroom, membership_id: int) -> str:
    """Remove the learner from the class; returns the name they were shown by."""
    membership = Membership.objects.filter(classroom=classroom, pk=membership_id).first()
    if membership is None:
        raise Http404("No such learner in this classroom.")
    membership.delete()
    return membership.display_name


def rename_member(classroom: Classroom, membership_id: int, display_name: str) -> Membership:
    membership = Membership.objects.filter(classroom=classroom, pk=membership_id).first()
    if membership is None:
        raise Http404("No such learner in this classroom.")
    membership.display_name = clean_display_name(display_name, membership.display_name)
    membership.save(update_fields=["display_name"])
    return membership


# --- The dashboard snapshot ---------------------------------------------------------------------

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


# --- Insights ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepInsight:
    lesson: str
    step: str
    title: str
    learners: int
    opened: int
    passed: int
    stuck: int  # opened, not passed
    median_seconds: float | None
    common_failure: str  # normalised: each learner's own values replaced by placeholders
    common_failure_count: int
    hints_used: int
    solutions_viewed: int
    most_stuck: bool = False
    common_failure_example: str = ""  # one learner's message as they saw it
    struggling: int = 0  # learners past the stuck thresholds (time on the step or failed checks)
    language: str = ""  # the language of ``title`` (an untranslated step's is the original's)


# Checks print the learner's own values (a pod's random name, a file's content, a count): replace
# them with placeholders so the same mistake made by many learners is one line. Order matters:
# quoted text first (it may hold anything), numbers last (the others contain digits).
_K8S_RANDOM = "[bcdfghjklmnpqrstvwxz2456789]"  # the alphabet of Kubernetes' generated name suffixes
_NORMALISERS = [
    (re.compile(r"(?<!\w)'[^'\n]*'(?!\w)"), "'…'"),
    (re.compile(r'"[^"\n]*"'), '"…"'),
    (re.compile(r"`[^`\n]*`"), "`…`"),
    (re.compile(r"[‘“][^’”\n]*[’”]"), "“…”"),
    (re.compile(r"(?:/home/learner|~)(?:/[^\s'\"`,;:)]*[^\s'\"`,;:).])?"), "~/…"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    # A controller's pod (web-7d4b9c8f6-x2x9z, job-k7q2m): the owner's name stays.
    (re.compile(rf"\b([a-z0-9](?:[a-z0-9.-]*?[a-z0-9])?)(?:-{_K8S_RANDOM}{{6,10}})?-{_K8S_RANDOM}{{5}}\b"), r"\1-<id>"),
    (re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}\b", re.I), "<id>"),
    (re.compile(r"\b\d+(?:[.,]\d+)*\b"), "<n>"),
]


def normalise_feedback(feedback: str) -> str:
    """The first non-empty line of a check's feedback (the rest often lists the learner's files),
    with numbers, quoted values, ids, paths in the learner's home and generated pod names replaced
    by placeholders: the key failing feedback is grouped by."""
    for line in (feedback or "").splitlines():
        line = " ".join(line.split())
        if line:
            for pattern, placeholder in _NORMALISERS:
                line = pattern.sub(placeholder, line)
            return line[:200]
    return ""



def _stuck_thresholds() -> tuple[int, float, int]:
    """At least this many learners on a step before the class can be stuck on it; a learner is
    stuck after this many seconds on a step without passing it, or this many failed checks."""
    return (
        settings.CLASSROOM_STUCK_MIN_LEARNERS,
        settings.CLASSROOM_STUCK_MINUTES * 60,
        settings.CLASSROOM_STUCK_FAILURES,
    )


def class_insights(classroom: Classroom, *, now=None) -> list[StepInsight]:
    """Per step: how many passed, the median time to pass, the commonest failing feedback, and
    whether the class is stuck there (enough learners on it, some of them for long or failing
    often: two learners a few seconds into a step are not a stuck class)."""
    min_learners, stuck_seconds, stuck_failures = _stuck_thresholds()
    now = classroom.ended_at or now or timezone.now()  # after the class, the clock stops
    lessons = assigned_lessons(classroom)
    slugs = [lesson.slug for lesson in lessons]
    member_ids = Membership.objects.filter(classroom=classroom).values("user_id")
    learners = Membership.objects.filter(classroom=classroom).count()
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    opened: Counter = Counter()
    passed: Counter = Counter()
    struggling: Counter = Counter()
    hints: Counter = Counter()
    solutions: Counter = Counter()
    for p in (
        StepProgress.objects.filter(user_id__in=member_ids, lesson__in=slugs)
        .annotate(failures=Count("attempts", filter=Q(attempts__outcome__in=FAILED_OUTCOMES)))
        .values("lesson", "step", "first_opened_at", "passed_at", "hints_used", "solution_viewed_at", "failures")
    ):
        key = (p["lesson"], p["step"])
        opened[key] += 1
        hints[key] += p["hints_used"]
        solutions[key] += p["solution_viewed_at"] is not None
        if p["passed_at"]:
            passed[key] += 1
            durations[key].append(max(0.0, (p["passed_at"] - p["first_opened_at"]).total_seconds()))
        elif p["failures"] >= stuck_failures or (now - p["first_opened_at"]).total_seconds() >= stuck_seconds:
            struggling[key] += 1
    failures: dict[tuple[str, str], Counter] = defaultdict(Counter)
    examples: dict[tuple[tuple[str, str], str], str] = {}
    for a in CheckAttempt.objects.filter(
        progress__user_id__in=member_ids, progress__lesson__in=slugs, outcome__in=FAILED_OUTCOMES
    ).values("progress__lesson", "progress__step", "feedback"):
        key = (a["progress__lesson"], a["progress__step"])
        normalised = normalise_feedback(a["feedback"])
        failures[key][normalised] += 1
        first_line = next((line.strip() for line in (a["feedback"] or "").splitlines() if line.strip()), "")
        examples.setdefault((key, normalised), first_line[:200])

    insights = []
    for lesson in lessons:
        for step in lesson.steps:
            key = (lesson.slug, step.slug)
            common = failures[key].most_common(1)
            insights.append(
                StepInsight(
                    lesson=lesson.slug,
                    step=step.slug,
                    title=step.title,
                    language=step.language,
                    learners=learners,
                    opened=opened[key],
                    passed=passed[key],
                    stuck=opened[key] - passed[key],
                    median_seconds=statistics.median(durations[key]) if durations[key] else None,
                    common_failure=common[0][0] if common else "",
                    common_failure_count=common[0][1] if common else 0,
                    common_failure_example=examples.get((key, common[0][0]), "") if common else "",
                    hints_used=hints[key],
                    solutions_viewed=solutions[key],
                    struggling=struggling[key] if opened[key] >= min_learners else 0,
                )
            )
    worst = max((i.struggling for i in insights), default=0)
    if worst > 0:
        insights = [dataclasses.replace(i, most_stuck=i.struggling == worst) for i in insights]
    return insights


# --- Export -----------------------------------------------------------------------------------

CSV_HEADER = [
    "learner", "username", "lesson", "step", "opened_at", "passed_at", "attempts", "failed_attempts",
    "hints_used", "solution_viewed", "last_feedback",
]


CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value) -> str:
    """Spreadsheets run cells starting with = + - @ (tab, CR) as formulas: prefix them with '
    (learner-typed names, check feedback). Also after each ';': a spreadsheet in a locale whose
    separator is ';' splits the cell there, and each piece starts a cell of its own."""
    text = "" if value is None else str(value)
    return ";".join("'" + part if part.lstrip(" ")[:1] in CSV_FORMULA_STARTS else part for part in text.split(";"))


def export_csv(classroom: Classroom) -> str:
    snapshot = dashboard_snapshot(classroom)
    usernames = dict(
        Membership.objects.filter(classroom=classroom).values_list("user_id", "user__username")
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for member in snapshot["members"]:
        for lesson in snapshot["lessons"]:
            for step in lesson["steps"]:
                cell = snapshot["cells"].get(f"{member['user']}:{lesson['slug']}:{step['slug']}")
                if cell is None:
                    continue
                writer.writerow([_csv_safe(v) for v in (
                    member["name"], usernames.get(member["user"], ""), lesson["slug"], step["slug"],
                    cell["opened_at"], cell["passed_at"] or "", cell["attempts"], cell["failures"],
                    cell["hints_used"], "yes" if cell["solution_viewed"] else "no", cell["feedback"],
                )])
    return out.getvalue()


# --- Consoles: instructors watch, and take control with a notice --------------------------------


def learner_sandbox(classroom: Classroom, sandbox_id, *, console: bool = False) -> Sandbox:
    """A sandbox of a member of this classroom for one of its lessons; 404 otherwise. For the
    console (watch, take control) the class must not have ended."""
    if console and classroom.ended_at is not None:
        raise Http404("This class has ended.")
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
        raise Http404("No such sandbox in this classroom.")
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


# --- Class-wide actions -----------------------------------------------------------------------


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
