"""A learner's ``docker`` commands count as activity, so a sandbox busy building is not culled idle.

Each gateway call (and each registry API request) calls the recorder; it records activity through
the ``touch`` it was given (the site's, see ``hooks``) at most once per interval, the same interval
the console uses for typing (shorter when the lesson's idle timeout is short).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

MAX_INTERVAL = 30.0


def touch_interval(idle_seconds: int) -> float:
    return max(1.0, min(MAX_INTERVAL, idle_seconds / 4)) if idle_seconds else MAX_INTERVAL


class ActivityRecorder:
    def __init__(self, sandbox_id: str, touch: Callable[[str], Awaitable[None]], interval: float = MAX_INTERVAL):
        self.sandbox_id = sandbox_id
        self.touch = touch
        self.interval = interval
        self.last = float("-inf")
        self._task: asyncio.Task | None = None

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.last < self.interval or (self._task and not self._task.done()):
            return
        self.last = now
        self._task = asyncio.get_running_loop().create_task(self._record())

    async def _record(self) -> None:
        try:
            await self.touch(self.sandbox_id)
        except Exception as exc:  # noqa: BLE001 - a busy database must not fail a docker command
            log.debug("cannot record activity of sandbox %s: %s", self.sandbox_id, exc)
