"""A learner's progress through a lesson: which steps they opened and passed, hints, solutions.

One ``StepProgress`` row per learner and step, made on first use; every check or quiz attempt is a
``CheckAttempt`` under it, and the first passing one marks the step passed. Progress rows are saved
with ``save()`` (never a queryset ``update()``): the instructor's dashboard hears of them through
``post_save``. Synchronous database helpers have ``a``-prefixed async twins for the async views.
"""

from __future__ import annotations

import dataclasses

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone

from .lesson import Lesson, Step
from .models import CheckAttempt, StepProgress


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    """The result of one attempt at a step (a check run in the sandbox, or a quiz graded on the
    server), as ``record_attempt`` stores it."""

    passed: bool
    outcome: str
    feedback: str
    truncated: bool = False
    exit_code: int | None = None


def progress_for(user, lesson: Lesson, step: Step) -> StepProgress:
    """The learner's progress row for the step, made (and marked first opened) on first use."""
    # Read first: on SQLite every transaction begins IMMEDIATE (it takes the write lock), and
    # each Check and page of a step asks for a row that is there from the step's first opening.
    # Under a class's writes that lock was a wait of its own before every Check's script ran.
    progress = StepProgress.objects.filter(user=user, lesson=lesson.slug, step=step.slug).first()
    if progress is not None:
        return progress
    try:
        with transaction.atomic():
            progress, _created = StepProgress.objects.get_or_create(user=user, lesson=lesson.slug, step=step.slug)
    except IntegrityError:  # two tabs opened the step at once
        progress = StepProgress.objects.get(user=user, lesson=lesson.slug, step=step.slug)
    return progress


def open_step(user, lesson: Lesson, step: Step) -> StepProgress:
    """Record that the learner opened the step. A step with nothing to pass is passed by reading it."""
    progress = progress_for(user, lesson, step)
    if not step.is_gated and progress.passed_at is None:
        progress.passed_at = timezone.now()
        progress.save(update_fields=["passed_at"])
    return progress


def lesson_progress(user, lesson: Lesson) -> dict[str, StepProgress]:
    """The learner's progress rows for the lesson, by step slug."""
    if not user.is_authenticated:
        return {}
    return {p.step: p for p in StepProgress.objects.filter(user=user, lesson=lesson.slug)}


def passed_steps(user, lesson: Lesson) -> set[str]:
    return {slug for slug, p in lesson_progress(user, lesson).items() if p.passed}


def first_open_step(lesson: Lesson, passed: set[str]) -> Step:
    """The step to show when the learner comes back: the first one not passed yet."""
    for step in lesson.steps:
        if step.slug not in passed:
            return step
    return lesson.steps[-1]


def step_is_open(lesson: Lesson, step: Step, passed: set[str]) -> bool:
    """A step opens once every gated step before it is passed (Next is opened by a passing check)."""
    for earlier in lesson.steps[: lesson.step_index(step.slug)]:
        if earlier.is_gated and earlier.slug not in passed:
            return False
    return True


def is_finished(lesson: Lesson, passed: set[str]) -> bool:
    return all(step.slug in passed for step in lesson.steps if step.is_gated) and bool(passed)


def catalogue_progress(user, lessons) -> dict[str, tuple[int, int]]:
    """``{lesson slug: (passed steps, steps)}`` for the catalogue, in one query."""
    counts = {lesson.slug: (0, len(lesson.steps)) for lesson in lessons}
    if not user.is_authenticated:
        return counts
    valid = {lesson.slug: {s.slug for s in lesson.steps} for lesson in lessons}
    done: dict[str, int] = {}
    for lesson_slug, step_slug in StepProgress.objects.filter(user=user, passed_at__isnull=False).values_list("lesson", "step"):
        if step_slug in valid.get(lesson_slug, ()):
            done[lesson_slug] = done.get(lesson_slug, 0) + 1
    return {slug: (done.get(slug, 0), total) for slug, (_zero, total) in counts.items()}


def record_attempt(progress: StepProgress, outcome: CheckOutcome) -> CheckAttempt:
    attempt = CheckAttempt.objects.create(
        progress=progress,
        outcome=outcome.outcome,
        exit_code=outcome.exit_code,
        feedback=outcome.feedback,
        truncated=outcome.truncated,
    )
    if outcome.passed and progress.passed_at is None:
        progress.passed_at = attempt.at
        progress.save(update_fields=["passed_at"])
    return attempt


def reveal_hint(user, lesson: Lesson, step: Step) -> StepProgress:
    """Reveal one more hint (in order), up to the number the step has."""
    pk = progress_for(user, lesson, step).pk
    # Locked read-then-save (not a queryset update): two tabs cannot skip a hint, and save() fires
    # post_save, which is how the instructor's dashboard hears of it.
    with transaction.atomic():
        progress = StepProgress.objects.select_for_update().get(pk=pk)
        if progress.hints_used < len(step.hints):
            progress.hints_used += 1
            progress.save(update_fields=["hints_used"])
    return progress


def view_solution(user, lesson: Lesson, step: Step) -> StepProgress:
    """Record that the learner looked at the solution (the first time counts)."""
    progress = progress_for(user, lesson, step)
    if progress.solution_viewed_at is None:
        progress.solution_viewed_at = timezone.now()
        progress.save(update_fields=["solution_viewed_at"])
    return progress


aprogress_for = sync_to_async(progress_for)
aopen_step = sync_to_async(open_step)
arecord_attempt = sync_to_async(record_attempt)
apassed_steps = sync_to_async(passed_steps)
alesson_progress = sync_to_async(lesson_progress)
