import uuid

from django.conf import settings
from django.db import models

from tutorial.rows import BY_PK, fetch_one


class Sandbox(models.Model):
    """One learner's sandbox for one lesson. The engine objects are found by the id label.

    Life of a row: ``queued`` (past the global capacity, waiting its turn) -> ``starting`` ->
    ``running`` -> ``stopping`` (files being saved) -> ``stopped`` (restartable; its files kept
    until ``expires_at``) or ``failed`` (with a reason) or ``gone`` (the engine lost it).
    ``pooled`` rows belong to the warm pool: a running container with no owner yet, claimed by
    giving the row an owner and a lesson in one guarded UPDATE (see ``sandbox.pool``).
    """

    class State(models.TextChoices):
        POOLED = "pooled"
        QUEUED = "queued"
        STARTING = "starting"
        RUNNING = "running"
        STOPPING = "stopping"
        STOPPED = "stopped"
        FAILED = "failed"
        GONE = "gone"

    LIVE_STATES = (State.STARTING, State.RUNNING)
    # What a learner holds (counted against SANDBOXES_PER_USER): waiting, starting or running.
    HELD_STATES = (State.QUEUED, State.STARTING, State.RUNNING)
    # What takes room on the engine (counted against SANDBOX_CAPACITY). Pooled containers are
    # counted too: the pool is filled only from room the class does not use.
    ENGINE_STATES = (State.STARTING, State.RUNNING, State.STOPPING, State.POOLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Empty only for warm-pool rows that nobody has claimed yet.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sandboxes",
                              null=True, blank=True)
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
    # Lifecycle (sandbox.lifecycle): when the time to live runs out (extended by extend_sandbox),
    # how often it was extended, which warnings were already sent, when it joined the queue, and
    # when its files were last saved on stop (kept until expires_at).
    expires_at = models.DateTimeField(null=True, blank=True)
    extensions = models.PositiveIntegerField(default=0)
    expiry_warned_at = models.DateTimeField(null=True, blank=True)
    idle_warned_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    files_saved_at = models.DateTimeField(null=True, blank=True)
    # A pooled sandbox: when the engine last showed it running (made by the pool, or listed by the
    # reaper); a claim trusts one seen recently without asking the engine again (sandbox.pool).
    seen_running_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "lesson"]), models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.lesson} for {self.owner_id} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE_STATES


def read_sandbox(sandbox_id) -> Sandbox | None:
    """The sandbox's row, or None (sync). Every Start and every console connect reads one: the
    SQL is made once (tutorial/rows.py), not by the ORM each time."""
    return fetch_one(Sandbox, BY_PK, (sandbox_id,))


class SavedHome(models.Model):
    """A stopped sandbox's home as a gzipped tar, when ``HOME_FILES_STORE`` is ``"database"``
    (``sandbox.home_files``): at most one per sandbox, bounded by the home's tmpfs cap.

    Keyed by the sandbox's id, not a foreign key, like the files store's ``<id>.tar.gz``: the
    reaper drops an archive whose sandbox row is gone, as it does a file.
    """

    sandbox_id = models.UUIDField(primary_key=True)
    archive = models.BinaryField()
    saved_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"home of {self.sandbox_id} saved at {self.saved_at}"
