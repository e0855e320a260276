"""Blocking engine-client calls (the docker SDK, the kubernetes client) run in a pool of their own.

``asyncio.to_thread`` uses the event loop's default executor, ``min(32, cores + 4)`` threads: six
on a two-core machine. A class starting together fills the warm pool again with container
creates that block for seconds each, while inspects, pings and removals wait for a free thread
behind them, and a learner's page waits behind those. Engine calls wait on the engine, not on
this machine's CPU, so their pool is sized for the calls in flight, not for the cores; threads
are only started when calls overlap, so an idle server holds none of them.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor

ENGINE_CALL_THREADS = 64

_executor = ThreadPoolExecutor(max_workers=ENGINE_CALL_THREADS, thread_name_prefix="engine-call")


async def run_blocking(func, /, *args, **kwargs):
    """``asyncio.to_thread`` on the engine-call pool (with the caller's context variables)."""
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor, call)
