"""Background work of this process (queue promotions, pool refills), and waiting for it."""

from __future__ import annotations

import asyncio
import contextvars
import logging

log = logging.getLogger(__name__)

# asyncio keeps only weak references to tasks: hold them until they finish.
_background: set[asyncio.Task] = set()


def spawn(coro) -> asyncio.Task:
    """Run ``coro`` in the background, in a context of its own: one copied from a request would
    send its database calls to that request's sync thread, which is gone once the answer is sent
    ("CurrentThreadExecutor already quit")."""
    task = asyncio.get_running_loop().create_task(coro, context=contextvars.Context())
    _background.add(task)
    task.add_done_callback(_background.discard)
    task.add_done_callback(_log_failure)
    return task


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background sandbox task failed", exc_info=task.exception())


async def wait_for_background() -> None:
    """Wait for queue promotions and pool refills started by this process (tests, commands)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
