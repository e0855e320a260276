"""A learner's ``docker`` commands count as activity, so a sandbox busy building is not culled idle.

Each gateway call (and each registry API request) calls the recorder; it writes
``last_activity_at`` through :func:`sandbox.services.touch` at most once per interval, the same
interval the console uses for typing (shorter when the lesson's idle timeout is short).
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger(__name__)

MAX_INTERVAL = 30.0


def touch_interval(lesson: str) -> float:
    from sandbox import lifecycle

    try:
        idle = lifecycle.policy_for(lesson).idle_seconds
    except Exception:  # noqa: BLE001 - an unknown lesson still counts, at the usual pace
        idle = 0
    return max(1.0, min(MAX_INTERVAL, idle / 4)) if idle else MAX_INTERVAL


class ActivityRecorder:
    def __init__(self, sandbox_id: str, lesson: str = "", interval: float | None = None):
        self.sandbox_id = sandbox_id
        self.interval = touch_interval(lesson) if interval is None else interval
        self.last = float("-inf")
        self._task: asyncio.Task | None = None

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.last < self.interval or (self._task and not self._task.done()):
            return
        self.last = now
        self._task = asyncio.get_running_loop().create_task(self._record())

    async def _record(self) -> None:
        from sandbox import services

        try:
            await services.touch(self.sandbox_id)
        except Exception as exc:  # noqa: BLE001 - a busy database must not fail a docker command
            log.debug("cannot record activity of sandbox %s: %s", self.sandbox_id, exc)
