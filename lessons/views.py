"""Lesson pages: catalogue, step page beside the terminal, Check / Hint / Solution (htmx partials),
and the finish page. Logic lives in ``lessons.progress``, ``lessons.checks`` and ``lessons.quizzes``; these
views load, authorise and render.

Check runs a script in the learner's sandbox and may take seconds, so it is an async view (it must
not hold Django's single thread for sync views). The quick views are plain sync views.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import limits
from accounts.decorators import login_required
from sandbox import engines, local_cluster
from sandbox.models import Sandbox

from .catalogue import all_lessons, get_lesson
from .checks import ensure_setup, run_check, running_sandbox
from .lesson import Lesson, Step
from .models import CheckAttempt
from .progress import (
    CheckOutcome, aopen_step, apassed_steps, aprogress_for, arecord_attempt, catalogue_progress,
    first_open_step, is_finished, lesson_progress, passed_steps, reveal_hint, step_is_open,
    view_solution,
)
from .quizzes import grade_quiz, quiz_outcome, shown_questions
from .sandbox_pane import pane_context


def _lesson_or_404(slug: str) -> Lesson:
    lesson = get_lesson(slug)
    if lesson is None or not lesson.steps:
        raise Http404(_("No such lesson"))
    return lesson


def _step_or_404(lesson: Lesson, step_slug: str) -> Step:
    step = lesson.step(step_slug)
    if step is None:
        raise Http404(_("No such step"))
    return step


def _neighbours(lesson: Lesson, step: Step) -> tuple[Step | None, Step | None]:
    index = lesson.step_index(step.slug)
    previous = lesson.steps[index - 1] if index > 0 else None
    following = lesson.steps[index + 1] if index + 1 < len(lesson.steps) else None
    return previous, following


def _step_url(lesson: Lesson, step: Step) -> str:
    return reverse("lessons:step", args=[lesson.slug, step.slug])


def _next_url(lesson: Lesson, step: Step) -> str:
    _previous, following = _neighbours(lesson, step)
    if following is None:
        return reverse("lessons:finish", args=[lesson.slug])
    return _step_url(lesson, following)


@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    lessons = all_lessons()
    progress = catalogue_progress(request.user, lessons)
    # Lessons whose workspace cannot start yet say so on their card (the local cluster being built).
    cluster_waiting, cluster_preparing = local_cluster.problem(settings)
    rows = [{"lesson": lesson, "done": progress[lesson.slug][0], "total": progress[lesson.slug][1],
             "waiting": bool(cluster_waiting) and lesson.workspace == "kubernetes", "preparing": cluster_preparing,
             "needs_docker_host": not engines.workspace_offered(lesson.workspace)}
            for lesson in lessons]
    return render(request, "lessons/catalogue.html", {"rows": rows, "lessons": lessons})


def prerequisite_rows(user, lesson: Lesson) -> list[dict]:
    """The lessons this one builds on, each with whether the learner finished it. Offered, never
    enforced: a learner who knows the material starts anyway."""
    rows = []
    for slug in lesson.prerequisites:
        needed = get_lesson(slug)
        if needed is None or not needed.steps:
            continue
        rows.append({"lesson": needed, "finished": is_finished(needed, passed_steps(user, needed))})
    return rows


@require_GET
def lesson_overview(request: HttpRequest, slug: str) -> HttpResponse:
    """Before starting: what the lesson teaches, what it builds on, its steps and its time."""
    lesson = _lesson_or_404(slug)
    passed = passed_steps(request.user, lesson)
    cluster_waiting, cluster_preparing = local_cluster.problem(settings)
    context = {
        "lesson": lesson,
        "steps": [{"step": step, "passed": step.slug in passed} for step in lesson.steps],
        "prerequisites": prerequisite_rows(request.user, lesson),
        "started": bool(passed),
        "finished": is_finished(lesson, passed),
        "waiting": bool(cluster_waiting) and lesson.workspace == "kubernetes",
        "preparing": cluster_preparing,
        "needs_docker_host": not engines.workspace_offered(lesson.workspace),
    }
    return render(request, "lessons/overview.html", context)


@require_GET
async def lesson_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The lesson's current step for this learner: the first one not passed yet."""
    lesson = _lesson_or_404(slug)
    user = await request.auser()
    passed = await apassed_steps(user, lesson)
    return await _render_step(request, lesson, first_open_step(lesson, passed))


@require_GET
async def step_detail(request: HttpRequest, slug: str, step_slug: str) -> HttpResponse:
    lesson = _lesson_or_404(slug)
    return await _render_step(request, lesson, _step_or_404(lesson, step_slug))


async def _render_step(request: HttpRequest, lesson: Lesson, step: Step) -> HttpResponse:
    user = await request.auser()
    request.user = user  # templates read it; the async lookup is already done
    progress = None
    passed: set[str] = set()
    sandbox = None
    setup_error = ""
    last_attempt = None
    if user.is_authenticated:
        passed = await apassed_steps(user, lesson)
        if not step_is_open(lesson, step, passed):
            return redirect(_step_url(lesson, first_open_step(lesson, passed)))
        progress = await aopen_step(user, lesson, step)
        if progress.passed:
            passed.add(step.slug)
        sandbox = await Sandbox.objects.filter(owner=user, lesson=lesson.slug).order_by("-created_at").afirst()
        if sandbox is not None and sandbox.state == Sandbox.State.RUNNING:
            setup_error = await ensure_setup(user, lesson, step, sandbox)
        last_attempt = await CheckAttempt.objects.filter(progress=progress).order_by("-at", "-id").afirst()
    previous, following = _neighbours(lesson, step)
    steps_nav = [
        {
            "step": s,
            "passed": s.slug in passed,
            "current": s.slug == step.slug,
            "open": not user.is_authenticated or step_is_open(lesson, s, passed),
            "url": _step_url(lesson, s),
        }
        for s in lesson.steps
    ]
    unfinished_prerequisites = []
    if lesson.step_index(step.slug) == 0 and lesson.prerequisites:
        rows = await sync_to_async(prerequisite_rows)(user, lesson)
        unfinished_prerequisites = [row["lesson"] for row in rows if not row["finished"]]
    context = {
        **(await pane_context(lesson, sandbox, user)),
        "lesson": lesson,
        "unfinished_prerequisites": unfinished_prerequisites,
        "step": step,
        "steps_nav": steps_nav,
        "step_number": lesson.step_index(step.slug) + 1,
        "progress": progress,
        "step_passed": step.slug in passed,
        "hints_shown": step.hints[: progress.hints_used] if progress else (),
        "more_hints": bool(progress) and progress.hints_used < len(step.hints),
        "solution_shown": bool(progress and progress.solution_viewed),
        "previous_url": _step_url(lesson, previous) if previous else "",
        "next_url": _next_url(lesson, step),
        "is_last_step": following is None,
        "setup_error": setup_error,
        "last_attempt": last_attempt,
        # Anonymous visitors cannot answer; they see one shared order.
        "quiz": shown_questions(user.pk if user.is_authenticated else "anonymous", lesson, step) if step.is_quiz else [],
    }
    return render(request, "lessons/lesson.html", context)


@login_required
@require_POST
async def step_check(request: HttpRequest, slug: str, step_slug: str) -> HttpResponse:
    """Check the step: run its check in the learner's own sandbox, or grade the quiz answers."""
    lesson = _lesson_or_404(slug)
    step = _step_or_404(lesson, step_slug)
    user = await request.auser()
    request.user = user
    verdict = await limits.ahit("check", str(user.pk), settings.RATE_CHECKS)
    if verdict.limited:
        # Nothing runs and nothing is recorded. htmx swaps only 2xx answers: it gets the message
        # with 200, a plain form post a 429.
        message = verdict.message(_("checks"))
        response = HttpResponse(format_html('<p class="notice error" role="alert" data-throttled>{}</p>', message),
                                status=200 if request.htmx else 429)
        response["Retry-After"] = str(verdict.retry_after)
        return response
    passed = await apassed_steps(user, lesson)
    if not step_is_open(lesson, step, passed):
        return HttpResponseForbidden(_("Finish the earlier steps first."))
    progress = await aprogress_for(user, lesson, step)
    results = []
    if step.is_quiz:
        quiz_passed, results = grade_quiz(step, request.POST)
        outcome = quiz_outcome(quiz_passed, results)
    elif step.check:
        sandbox = await running_sandbox(user, lesson)
        if sandbox is None:
            outcome = CheckOutcome(False, CheckAttempt.Outcome.ERROR, _("Your sandbox is not running: start it, then check again."))
        else:
            setup_error = await ensure_setup(user, lesson, step, sandbox)
            if setup_error:
                outcome = CheckOutcome(False, CheckAttempt.Outcome.ERROR, setup_error)
            else:
                outcome = await run_check(sandbox, step)
    else:
        return HttpResponseBadRequest(_("This step has nothing to check."))
    attempt = await arecord_attempt(progress, outcome)
    context = {
        "lesson": lesson,
        "step": step,
        "outcome": outcome,
        "attempt": attempt,
        "results": results,
        "next_url": _next_url(lesson, step) if outcome.passed else "",
        "is_last_step": lesson.steps[-1].slug == step.slug,
    }
    return render(request, "lessons/_check_result.html", context)


@login_required
@require_POST
def step_hint(request: HttpRequest, slug: str, step_slug: str) -> HttpResponse:
    """Reveal the next hint; returns the hints partial."""
    lesson = _lesson_or_404(slug)
    step = _step_or_404(lesson, step_slug)
    if not step_is_open(lesson, step, passed_steps(request.user, lesson)):
        return HttpResponseForbidden(_("Finish the earlier steps first."))
    progress = reveal_hint(request.user, lesson, step)
    context = {
        "lesson": lesson,
        "step": step,
        "hints_shown": step.hints[: progress.hints_used],
        "more_hints": progress.hints_used < len(step.hints),
    }
    return render(request, "lessons/_hints.html", context)


@login_required
@require_POST
def step_solution(request: HttpRequest, slug: str, step_slug: str) -> HttpResponse:
    """Show the solution and record that the learner viewed it."""
    lesson = _lesson_or_404(slug)
    step = _step_or_404(lesson, step_slug)
    if not step.solution and not step.is_quiz:
        raise Http404(_("This step has no solution."))
    if not step_is_open(lesson, step, passed_steps(request.user, lesson)):
        return HttpResponseForbidden(_("Finish the earlier steps first."))
    view_solution(request.user, lesson, step)
    return render(request, "lessons/_solution.html", {"lesson": lesson, "step": step})


@login_required
@require_POST
async def step_setup(request: HttpRequest, slug: str, step_slug: str) -> HttpResponse:
    """Run the step's setup in the learner's sandbox once it is running (called by lessons.js)."""
    lesson = _lesson_or_404(slug)
    step = _step_or_404(lesson, step_slug)
    user = await request.auser()
    sandbox = await running_sandbox(user, lesson)
    if sandbox is None:
        return HttpResponse(status=204)
    error = await ensure_setup(user, lesson, step, sandbox)
    if error:
        return HttpResponse(error, status=502, content_type="text/plain; charset=utf-8")
    return HttpResponse(status=204)


@login_required
@require_GET
def lesson_finish(request: HttpRequest, slug: str) -> HttpResponse:
    """What the learner did and learned in the lesson, and where to go next."""
    lesson = _lesson_or_404(slug)
    progress = lesson_progress(request.user, lesson)
    passed = {s for s, p in progress.items() if p.passed}
    if not is_finished(lesson, passed):
        return redirect(_step_url(lesson, first_open_step(lesson, passed)))
    attempts: dict[int, int] = {}
    for progress_id in CheckAttempt.objects.filter(progress__in=progress.values()).values_list("progress_id", flat=True):
        attempts[progress_id] = attempts.get(progress_id, 0) + 1
    rows = []
    for step in lesson.steps:
        row = progress.get(step.slug)
        rows.append(
            {
                "step": step,
                "attempts": attempts.get(row.pk, 0) if row else 0,
                "hints": row.hints_used if row else 0,
                "solution": bool(row and row.solution_viewed),
            }
        )
    lessons = list(all_lessons())
    index = next(i for i, candidate in enumerate(lessons) if candidate.slug == lesson.slug)
    next_lesson = lessons[index + 1] if index + 1 < len(lessons) else None
    running = (Sandbox.objects.filter(owner=request.user, lesson=lesson.slug, state=Sandbox.State.RUNNING)
               .order_by("-created_at").first())
    context = {"lesson": lesson, "rows": rows, "next_lesson": next_lesson, "running_sandbox": running}
    return render(request, "lessons/finish.html", context)


