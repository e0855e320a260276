"""Lifecycle policy: time to live, idle timeout, warnings, extensions and queue order.

Pure functions over rows and settings, with no engine and no I/O, so each rule is unit-tested
alone; ``sandbox.services`` and ``sandbox.reaper`` act on what they decide. The limits a lesson
asks for itself come from a source the lessons app registers (:func:`register_lesson_limits`), so
this module imports nothing above it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Callable, Iterable

from django.conf import settings


@dataclasses.dataclass(frozen=True)
class Policy:
    """The limits one lesson's sandboxes live by (settings, then the lesson's overrides)."""

    ttl_seconds: int
    idle_seconds: int
    warn_seconds: int
    extend_seconds: int
    max_extensions: int

    @property
    def can_extend(self) -> bool:
        return self.extend_seconds > 0 and self.max_extensions > 0


OVERRIDE_KEYS = {"ttl": "ttl_seconds", "idle": "idle_seconds", "warn": "warn_seconds",
                 "extend": "extend_seconds", "max_extensions": "max_extensions"}


LessonLimits = Callable[[str], Iterable[tuple[str, int]]]


def _no_lesson_limits(lesson: str) -> Iterable[tuple[str, int]]:
    return ()


_lesson_limits: LessonLimits = _no_lesson_limits


def register_lesson_limits(source: LessonLimits) -> None:
    """Where a lesson's own limits are read: ``source(slug)`` gives its ``(key, seconds)`` pairs
    (keys of ``OVERRIDE_KEYS``), nothing for an unknown lesson."""
    global _lesson_limits
    _lesson_limits = source


def policy_for(lesson: str) -> Policy:
    """Settings' limits, then the lesson's own (``sandbox:`` in its front matter, checked when
    lessons load), then the instructor's ``SANDBOX_LESSON_LIMITS[lesson]`` laid over them.

    An unknown key or a negative value in an override is a configuration error: say which.
    """
    values = {
        "ttl_seconds": settings.SANDBOX_TTL_SECONDS,
        "idle_seconds": settings.SANDBOX_IDLE_SECONDS,
        "warn_seconds": settings.SANDBOX_WARN_SECONDS,
        "extend_seconds": settings.SANDBOX_EXTEND_SECONDS,
        "max_extensions": settings.SANDBOX_MAX_EXTENSIONS,
    }
    for key, value in _lesson_limits(lesson):
        values[OVERRIDE_KEYS[key]] = value
    override = (settings.SANDBOX_LESSON_LIMITS or {}).get(lesson) or {}
    for key, value in override.items():
        if key not in OVERRIDE_KEYS:
            raise ValueError(f"SANDBOX_LESSON_LIMITS[{lesson!r}]: unknown key {key!r} "
                             f"(known: {', '.join(sorted(OVERRIDE_KEYS))})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"SANDBOX_LESSON_LIMITS[{lesson!r}][{key!r}] must be a whole number of seconds >= 0")
        values[OVERRIDE_KEYS[key]] = value
    return Policy(**values)


class Action(str, enum.Enum):
    """What the reaper does to a running sandbox now."""

    NONE = "none"
    WARN_EXPIRY = "warn-expiry"
    WARN_IDLE = "warn-idle"
    EXPIRE = "expire"  # time to live ran out: stop and drop its files
    IDLE_STOP = "idle-stop"  # idle too long: stop, keep its files


def idle_deadline(last_activity_at: dt.datetime | None, started_at: dt.datetime | None, policy: Policy):
    since = last_activity_at or started_at
    if since is None or policy.idle_seconds <= 0:
        return None
    return since + dt.timedelta(seconds=policy.idle_seconds)


def decide(sandbox, policy: Policy, now: dt.datetime) -> Action:
    """The one thing to do with a running sandbox at ``now``; expiry beats idleness."""
    if sandbox.expires_at is not None and now >= sandbox.expires_at:
        return Action.EXPIRE
    idle_at = idle_deadline(sandbox.last_activity_at, sandbox.started_at, policy)
    if idle_at is not None and now >= idle_at:
        return Action.IDLE_STOP
    warn = dt.timedelta(seconds=policy.warn_seconds)
    if (sandbox.expires_at is not None and now >= sandbox.expires_at - warn
            and (sandbox.expiry_warned_at is None or sandbox.expiry_warned_at < sandbox.expires_at - warn)):
        return Action.WARN_EXPIRY
    if idle_at is not None and now >= idle_at - warn and (
            sandbox.idle_warned_at is None or sandbox.idle_warned_at < idle_at - warn):
        return Action.WARN_IDLE
    return Action.NONE


def seconds_left(sandbox, policy: Policy, now: dt.datetime) -> int | None:
    """Seconds until the sandbox stops for whichever comes first, its time to live or idleness."""
    ends = [t for t in (sandbox.expires_at, idle_deadline(sandbox.last_activity_at, sandbox.started_at, policy)) if t]
    if not ends:
        return None
    return max(0, int((min(ends) - now).total_seconds()))


def session_seconds_left(sandbox, now: dt.datetime) -> int | None:
    """Seconds until the sandbox's time to live runs out (Extend moves it), or ``None`` if it has none."""
    if sandbox.expires_at is None:
        return None
    return max(0, int((sandbox.expires_at - now).total_seconds()))


def idle_seconds_left(sandbox, policy: Policy, now: dt.datetime) -> int | None:
    """Seconds of inactivity left before the sandbox stops; any activity starts them again."""
    idle_at = idle_deadline(sandbox.last_activity_at, sandbox.started_at, policy)
    if idle_at is None:
        return None
    return max(0, int((idle_at - now).total_seconds()))


def extensions_left(sandbox, policy: Policy) -> int:
    return max(0, policy.max_extensions - sandbox.extensions) if policy.can_extend else 0


def queue_order(queued: Iterable, running_owner_ids: set) -> list:
    """Who starts first among queued rows: learners holding no running sandbox before those who
    already have one (one learner's second lesson must not keep a classmate waiting), then first
    come, first served."""
    return sorted(queued, key=lambda s: (s.owner_id in running_owner_ids, s.queued_at or s.created_at, str(s.id)))


def files_expired(sandbox, now: dt.datetime) -> bool:
    """A stopped sandbox's saved files are kept until its time to live runs out."""
    return sandbox.expires_at is not None and now >= sandbox.expires_at
