"""Checks and setup scripts, run in the learner's own sandbox.

A step's check runs through ``sandbox.services.run_script``: exec inside the learner's sandbox,
never in their TTY, with the whole process group killed at the step's timeout. Exit 0 passes; the
check's output, in the learner's language (``lessons.feedback``) and cut to what the page shows,
is the feedback. A step's setup runs once per sandbox incarnation, before the learner starts it.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.utils.translation import gettext as _

from sandbox import services as sandbox_services
from sandbox.backends.base import BackendError, RunResult
from sandbox.models import Sandbox

from .feedback import translate as translate_feedback
from .lesson import Lesson, Step
from .models import CheckAttempt
from .progress import CheckOutcome, aprogress_for

# The feedback a learner sees is capped: a check that prints megabytes must not flood the page
# or the database. The backend already cuts at 64 KiB; this is the stored and shown limit.
MAX_FEEDBACK_CHARS = 16 * 1024


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
