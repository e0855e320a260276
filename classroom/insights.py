"""Where a class is stuck: per-step numbers and the most common failing feedback, grouped by a
normalised message."""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections import Counter, defaultdict

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from lessons.models import CheckAttempt, StepProgress

from .models import Classroom, Membership
from .dashboard import FAILED_OUTCOMES
from .roster import assigned_lessons


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
