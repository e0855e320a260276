import uuid

from django.conf import settings
from django.db import models


class Sandbox(models.Model):
    """One learner's sandbox for one lesson. The engine objects are found by the id label."""

    class State(models.TextChoices):
        STARTING = "starting"
        RUNNING = "running"
        STOPPED = "stopped"
        FAILED = "failed"
        GONE = "gone"

    LIVE_STATES = (State.STARTING, State.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sandboxes")
    lesson = models.SlugField(max_length=100)
    workspace = models.CharField(max_length=20)
    image = models.CharField(max_length=200)
    state = models.CharField(max_length=20, choices=State.choices, default=State.STARTING)
    engine_ref = models.CharField(max_length=200, blank=True)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "lesson"]), models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.lesson} for {self.owner_id} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE_STATES
