"""Background work a request starts (a queue promotion, a pool refill) outlives the request: it
must not use the request's own sync thread, which is gone once the answer is sent."""

from __future__ import annotations

import asyncio

from asgiref.sync import ThreadSensitiveContext, async_to_sync, sync_to_async

from sandbox import tasks


async def test_background_work_outlives_the_request_that_started_it():
    answered = asyncio.Event()
    finished = asyncio.Event()
    failures = []

    async def later():
        await answered.wait()  # the request's sync thread is gone by now
        try:
            await sync_to_async(lambda: None)()  # a database call, as the pool's refill makes
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finished.set()

    async def view():
        tasks.spawn(later())

    def through_sync_middleware():
        # Django runs an async view under a sync middleware (WhiteNoise's) with async_to_sync.
        async_to_sync(view)()

    async with ThreadSensitiveContext():  # what Django's ASGI handler opens around each request
        await sync_to_async(through_sync_middleware)()
    answered.set()
    await asyncio.wait_for(finished.wait(), 5)
    assert failures == []
