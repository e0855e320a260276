"""Learner progress, per learner and step. The instructor dashboard reads these rows.

Progress is keyed by lesson and step *slugs* (not by sandbox), so it survives logout, sandbox
restarts and resets. Step slugs are the step file names without their number, so an author may
renumber steps without losing anyone's progress.
"""

from django.conf import settings
from django.db import models


class StepProgress(models.Model):
    """One learner on one step: when they opened it, passed it, and what help they used."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="step_progress")
    lesson = models.SlugField(max_length=100)
    step = models.SlugField(max_length=100)
    first_opened_at = models.DateTimeField(auto_now_add=True)
    passed_at = models.DateTimeField(null=True, blank=True)
    hints_used = models.PositiveSmallIntegerField(default=0)
    solution_viewed_at = models.DateTimeField(null=True, blank=True)
    # Which sandbox incarnation (id and start time) the step's setup script last ran in, so setup
    # runs once per fresh sandbox, not on every page load.
    setup_ran_in = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "lesson", "step"], name="one_progress_per_user_step")]
        indexes = [models.Index(fields=["lesson", "step"])]

    def __str__(self) -> str:
        return f"{self.user_id} {self.lesson}/{self.step}"

    @property
    def passed(self) -> bool:
        return self.passed_at is not None

    @property
    def solution_viewed(self) -> bool:
        return self.solution_viewed_at is not None


class CheckAttempt(models.Model):
    """Every press of Check (or quiz submission): the outcome and the feedback the learner saw."""

    class Outcome(models.TextChoices):
        PASSED = "passed"
        FAILED = "failed"
        TIMED_OUT = "timed_out"
        ERROR = "error"  # the sandbox was not running or the engine failed

    progress = models.ForeignKey(StepProgress, on_delete=models.CASCADE, related_name="attempts")
    at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    exit_code = models.IntegerField(null=True, blank=True)
    feedback = models.TextField(blank=True)
    truncated = models.BooleanField(default=False)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.progress} {self.outcome} at {self.at:%Y-%m-%d %H:%M:%S}"

    @property
    def passed(self) -> bool:
        return self.outcome == self.Outcome.PASSED
