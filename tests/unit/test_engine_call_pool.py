"""Engine calls that block for long (a class's container creates filling the warm pool) leave
room for the quick ones (a ping for the lesson page, an inspect): they do not queue behind the
event loop's few default threads (six on two cores)."""

from __future__ import annotations

import asyncio
import os
import threading

from sandbox.backends.blocking import run_blocking


async def test_a_quick_call_answers_while_many_slow_calls_block():
    release = threading.Event()
    slow_calls = 2 * min(32, (os.cpu_count() or 1) + 4)  # more than the default executor's threads
    slow = [asyncio.ensure_future(run_blocking(release.wait, 30)) for _ in range(slow_calls)]
    try:
        # A deadline for a hung test, not a speed figure: with the default executor the quick
        # call waits until the slow ones are released.
        assert await asyncio.wait_for(run_blocking(lambda: "pong"), 10) == "pong"
        assert not any(call.done() for call in slow)
    finally:
        release.set()
        await asyncio.gather(*slow)
