"""Lesson engine logic: progress, checks in the learner's sandbox, quizzes, hints and solutions.

Views call these functions and only render. Checks run through ``sandbox.services.run_script``
(exec inside the learner's own sandbox, never in their TTY). Synchronous database helpers have
``a``-prefixed async twins for the async views.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import unicodedata

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sandbox import services as sandbox_services
from sandbox.backends.base import BackendError, RunResult
from sandbox.models import Sandbox

from .content_loader import Lesson, Question, Step
from .feedback import translate as translate_feedback
from .models import CheckAttempt, StepProgress

# The feedback a learner sees is capped: a check that prints megabytes must not flood the page
# or the database. The backend already cuts at 64 KiB; this is the stored and shown limit.
MAX_FEEDBACK_CHARS = 16 * 1024


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    outcome: str
    feedback: str
    truncated: bool = False
    exit_code: int | None = None


# --- Progress -------------------------------------------------------------------------------


def progress_for(user, lesson: Lesson, step: Step) -> StepProgress:
    """The learner's progress row for the step, made (and marked first opened) on first use."""
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


# --- Checks ---------------------------------------------------------------------------------


def shape_feedback(output: str) -> tuple[str, bool]:
    """Cut the check's output to what the page shows and the database keeps."""
    if len(output) <= MAX_FEEDBACK_CHARS:
        return output, False
    return output[:MAX_FEEDBACK_CHARS], True


async def running_sandbox(user, lesson: Lesson) -> Sandbox | None:
    """The learner's own running sandbox for this lesson, if any."""
    return await Sandbox.objects.filter(owner=user, lesson=lesson.slug, state=Sandbox.State.RUNNING).order_by("-created_at").afirst()


async def run_guarded(sandbox: Sandbox, script: str, seconds: int) -> RunResult:
    """Run a check or setup script; the backend kills it and all it started at ``seconds``."""
    return await sandbox_services.run_script(sandbox, script, timeout=seconds)


async def run_check(sandbox: Sandbox, step: Step) -> CheckOutcome:
    """Run the step's check inside the sandbox: exit 0 passes; its output is the feedback."""
    try:
        result = await run_guarded(sandbox, step.check, step.timeout)
    except BackendError as exc:
        return CheckOutcome(False, CheckAttempt.Outcome.ERROR, str(exc))
    # The check's messages in the learner's language (lines its translation gives, see lessons.feedback).
    feedback, cut = shape_feedback(translate_feedback(result.output, step.localized().feedback))
    truncated = cut or result.truncated
    if result.timed_out:
        message = _("The check did not finish within %(seconds)s seconds, so it counts as not passed. Is something in your sandbox hanging?") % {
            "seconds": step.timeout
        }
        return CheckOutcome(False, CheckAttempt.Outcome.TIMED_OUT, (feedback + "\n" + message).strip(), truncated)
    if result.exit_code == 0:
        return CheckOutcome(True, CheckAttempt.Outcome.PASSED, feedback, truncated, 0)
    return CheckOutcome(False, CheckAttempt.Outcome.FAILED, feedback, truncated, result.exit_code)


async def run_setup(sandbox: Sandbox, step: Step) -> None:
    """Run the step's setup script before the learner starts it (errors are logged by the caller)."""
    if step.setup:
        result = await run_guarded(sandbox, step.setup, step.timeout)
        if result.exit_code != 0:
            raise BackendError(f"the setup of step {step.slug!r} failed: {result.output[-500:]}")


# --- Quizzes --------------------------------------------------------------------------------


def normalise_answer(text: str) -> str:
    """Short answers compare without case, surrounding space, repeated spaces or width forms."""
    text = unicodedata.normalize("NFKC", text or "").strip().casefold()
    text = " ".join(text.split())
    return text.rstrip(".。")


@dataclasses.dataclass(frozen=True)
class QuestionResult:
    question: Question
    given: str
    correct: bool

    @property
    def why_html(self) -> str:
        """What the author wrote about the chosen answer (never which choice is right)."""
        return self.question.why_html(self.given) if self.question.is_choice else ""


@dataclasses.dataclass(frozen=True)
class ShownQuestion:
    """A question as one learner sees it: its choices as (key, html) in that learner's order."""

    number: int
    question: Question
    choices: tuple[tuple[str, str], ...]


def choice_order(question: Question, seed: str) -> list[int]:
    """The positions of the question's choices in the order one learner sees them.

    Seeded, not random: the same learner sees the same order on every reload (an answer they
    picked stays where it was), while different learners see different orders, so "the first one"
    is no answer and neither is a neighbour's position.
    """
    order = list(range(len(question.choices)))
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def quiz_seed(learner_id, lesson: Lesson, step: Step, number: int) -> str:
    return f"{learner_id}:{lesson.slug}:{step.slug}:{number}"


def shown_questions(learner_id, lesson: Lesson, step: Step) -> list[ShownQuestion]:
    """The step's questions in the active language, choices in this learner's order."""
    shown = []
    for number, question in enumerate(step.questions):
        order = choice_order(question, quiz_seed(learner_id, lesson, step, number)) if question.is_choice else []
        choices = tuple((question.keys[i], question.choices_html[i]) for i in order)
        shown.append(ShownQuestion(number, question, choices))
    return shown


def grade_quiz(step: Step, answers: dict[str, str]) -> tuple[bool, list[QuestionResult]]:
    """Grade a quiz on the server. ``answers`` maps ``q<N>`` to the chosen choice's key or the text typed.

    A multiple-choice answer is the choice's key (``choice_key`` of the original's text), not its
    position: positions differ from learner to learner, and keys do not depend on the language
    the learner reads the quiz in.
    """
    results = []
    for number, question in enumerate(step.questions):
        given = str(answers.get(f"q{number}", "")).strip()
        if question.is_choice:
            correct = bool(given) and given == question.answer_key
        else:
            accepted = {normalise_answer(a) for a in question.answer_text}
            # Accept the original language's answers too: a learner may switch language mid-quiz.
            accepted |= {normalise_answer(a) for q in [step.text.questions[number]] for a in q.answer_text}
            correct = bool(given) and normalise_answer(given) in accepted
        results.append(QuestionResult(question, given, correct))
    return all(r.correct for r in results) and bool(results), results


def quiz_outcome(passed: bool, results: list[QuestionResult]) -> CheckOutcome:
    wrong = [str(i + 1) for i, r in enumerate(results) if not r.correct]
    if passed:
        feedback = _("All answers are right.")
    else:
        feedback = _("Not quite: look again at question(s) %(numbers)s.") % {"numbers": ", ".join(wrong)}
    return CheckOutcome(passed, CheckAttempt.Outcome.PASSED if passed else CheckAttempt.Outcome.FAILED, feedback)


# --- Setup ----------------------------------------------------------------------------------


def _incarnation(sandbox: Sandbox) -> str:
    started = sandbox.started_at.isoformat() if sandbox.started_at else ""
    return f"{sandbox.id}@{started}"[:100]


async def ensure_setup(user, lesson: Lesson, step: Step, sandbox: Sandbox) -> str:
    """Run the step's setup once per sandbox incarnation (a reset or restart runs it again).

    Returns an error message to show, or ``""``.
    """
    if not step.setup or sandbox.state != Sandbox.State.RUNNING:
        return ""
    progress = await aprogress_for(user, lesson, step)
    marker = _incarnation(sandbox)
    if progress.setup_ran_in == marker:
        return ""
    try:
        await run_setup(sandbox, step)
    except BackendError as exc:
        return str(exc)
    progress.setup_ran_in = marker
    await sync_to_async(progress.save)(update_fields=["setup_ran_in"])
    return ""
