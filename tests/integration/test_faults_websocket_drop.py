"""A websocket that drops mid-output: the sandbox keeps running, nothing leaks, and a new
console reattaches to the same shell with its recent screen."""

from __future__ import annotations

import asyncio
import time

import pytest

from sandbox import console_slots, services
from sandbox.models import Sandbox
from tests.websockets import connect_console, read_until

from .lifecycle_helpers import cleanup, make_user, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_a_dropped_websocket_mid_output_loses_nothing(console, base_image, cleanup, labelled_leftovers):
    owner = await make_user()
    sandbox = await start(owner)
    cleanup.append(sandbox)
    ws = await connect_console(console, sandbox, owner)
    await read_until(ws, rb"\$ ")
    await ws.send_to(bytes_data=b"echo marker-$((6*7)) > kept.txt; i=0; while [ $i -lt 4000 ]; do echo line$i; i=$((i+1)); done\r")
    await read_until(ws, rb"line1\d\d")  # mid-output
    await ws.disconnect(code=1006)  # the browser vanished (no ack, no close handshake)

    await asyncio.sleep(0.5)
    assert console_slots.local_slots.count(owner.pk, time.monotonic()) == 0  # the console's slot was given back
    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.RUNNING

    again = await connect_console(console, sandbox, owner)
    await again.send_to(text_data='{"type": "resize", "cols": 100, "rows": 30}')
    await read_until(again, rb"line3999", timeout=20)  # the shell finished its loop meanwhile
    await again.send_to(bytes_data=b"cat kept.txt\r")
    await read_until(again, rb"marker-42")
    await again.disconnect()
    await services.stop_sandbox(sandbox)
    assert labelled_leftovers(sandbox.id) == []
