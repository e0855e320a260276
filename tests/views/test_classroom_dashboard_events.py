"""The instructor's live dashboard relays a learner's Check at once, even while the process's
consumers' shared sync thread is busy (a class's consoles recording activity, each waiting for
SQLite's write lock): relaying an event needs no database."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from classroom.models import group_name
from classroom.signals import EVENT_TYPE

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_check_reaches_the_dashboard_while_the_sync_thread_is_busy(dashboard, classroom, instructor):
    ws = await dashboard(classroom.pk, instructor)
    connected, _ = await ws.connect()
    assert connected
    assert json.loads(await ws.receive_from(timeout=5))["kind"] == "hello"

    holding, release = threading.Event(), threading.Event()

    def busy() -> None:  # stands for database work queued on the consumers' one sync thread
        holding.set()
        release.wait(30)

    blocker = asyncio.ensure_future(sync_to_async(busy)())
    try:
        while not holding.is_set():
            await asyncio.sleep(0.01)
        event = {"kind": "attempt", "user": 7, "lesson": "what-is-a-container", "step": "run", "outcome": "passed"}
        await get_channel_layer().group_send(group_name(classroom.pk), {"type": EVENT_TYPE, "event": event})
        # The instructor sees it while the thread is still busy.
        assert json.loads(await ws.receive_from(timeout=5)) == event
    finally:
        release.set()
        await blocker
    await ws.disconnect()
