"""Time to live and idle timeout with short configured times, on the real engine: warnings,
stops, files kept (idle) or dropped (time up), and a restart that brings the files back."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from django.utils import timezone

from sandbox import home_files, reaper, services
from sandbox.models import Sandbox
from tests.websockets import closed_with, connect_console, read_until, texts_until

from .lifecycle_helpers import cleanup, make_user, only, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_idle_stop_keeps_files_and_a_restart_brings_them_back(settings, base_image, cleanup, labelled_leftovers):
    settings.SANDBOX_IDLE_SECONDS, settings.SANDBOX_WARN_SECONDS = 4, 2
    sandbox = await start(await make_user())
    cleanup.append(sandbox)
    backend = services.get_backend("plain")
    # Straight through the backend: a check would count as activity.
    made = await backend.run(sandbox.engine_ref, "echo kept > notes.txt && mkdir -p d && echo deep > d/x", timeout=10)
    assert made.exit_code == 0, made.output

    started = timezone.now()
    assert str(sandbox.id) in (await reaper.reap_once(only(sandbox), now=started + dt.timedelta(seconds=2.3))).warned
    report = await reaper.reap_once(only(sandbox), now=started + dt.timedelta(seconds=4.3))
    assert str(sandbox.id) in report.idle_stopped

    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.STOPPED
    assert "without activity" in sandbox.failure_reason and "files are kept" in sandbox.failure_reason
    assert labelled_leftovers(sandbox.id) == []
    assert await home_files.has_saved_files(sandbox.id)

    settings.SANDBOX_IDLE_SECONDS = 600
    await services.restart_sandbox(sandbox)
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    back = await backend.run(sandbox.engine_ref, "cat notes.txt d/x && ls -ln notes.txt", timeout=10)
    assert back.output.startswith("kept\ndeep\n") and " 1000 " in back.output, back.output
    assert not await home_files.has_saved_files(sandbox.id)  # the running sandbox holds them now
    await services.stop_sandbox(sandbox)


async def test_time_to_live_warns_the_console_then_stops_and_drops_the_files(settings, console, base_image, cleanup,
                                                                             labelled_leftovers):
    settings.SANDBOX_TTL_SECONDS, settings.SANDBOX_WARN_SECONDS, settings.SANDBOX_IDLE_SECONDS = 4, 3, 0
    owner = await make_user()
    sandbox = await start(owner)
    cleanup.append(sandbox)
    backend = services.get_backend("plain")
    await backend.run(sandbox.engine_ref, "echo draft > notes.txt", timeout=10)
    ws = await connect_console(console, sandbox, owner)
    await read_until(ws, rb"\$ ")

    started = timezone.now()
    assert str(sandbox.id) in (await reaper.reap_once(only(sandbox), now=started + dt.timedelta(seconds=1.2))).warned
    seen = await texts_until(ws, lambda m: m["type"] == "timer")
    assert any(m["type"] == "notice" and "time runs out" in m["message"] and "Extend" in m["message"] for m in seen), seen

    assert str(sandbox.id) in (await reaper.reap_once(only(sandbox), now=started + dt.timedelta(seconds=4.2))).expired
    seen = await texts_until(ws, lambda m: m.get("state") == "stopped")
    assert seen[-2:] == [{"type": "state", "state": "stopping", "reason": reaper.TIME_UP},
                         {"type": "state", "state": "stopped", "reason": reaper.TIME_UP}]
    await closed_with(ws, 1000)
    assert labelled_leftovers(sandbox.id) == [] and not await home_files.has_saved_files(sandbox.id)

    # Starting again gives a fresh sandbox with a new time to live; progress lives in the database.
    settings.SANDBOX_TTL_SECONDS = 600
    await services.restart_sandbox(sandbox)
    assert sandbox.state == Sandbox.State.RUNNING and sandbox.extensions == 0
    assert (await backend.run(sandbox.engine_ref, "cat notes.txt", timeout=10)).exit_code != 0
    await services.stop_sandbox(sandbox)


async def test_console_input_counts_as_activity(settings, console, base_image, cleanup):
    settings.SANDBOX_IDLE_SECONDS, settings.SANDBOX_WARN_SECONDS = 3, 0
    owner = await make_user()
    sandbox = await start(owner)
    cleanup.append(sandbox)
    ws = await connect_console(console, sandbox, owner)
    await read_until(ws, rb"\$ ")
    for _ in range(9):  # 4.5 s of typing, longer than the idle timeout
        await ws.send_to(bytes_data=b"true\r")
        await asyncio.sleep(0.5)
    report = await reaper.reap_once(only(sandbox))
    assert str(sandbox.id) not in report.idle_stopped
    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.RUNNING
    await ws.disconnect()
    await services.stop_sandbox(sandbox)


async def test_extend_moves_the_end_and_is_limited(settings, base_image, cleanup):
    settings.SANDBOX_TTL_SECONDS, settings.SANDBOX_EXTEND_SECONDS, settings.SANDBOX_MAX_EXTENSIONS = 600, 300, 1
    sandbox = await start(await make_user())
    cleanup.append(sandbox)
    before = sandbox.expires_at
    await services.learner_extend(sandbox)
    await sandbox.arefresh_from_db()
    assert (sandbox.expires_at - before).total_seconds() == pytest.approx(300, abs=1) and sandbox.extensions == 1
    with pytest.raises(services.ExtendNotAllowed, match="cannot be extended any further"):
        await services.learner_extend(sandbox)
    # An instructor's extension (classroom) is not counted against the learner's.
    await services.extend_sandbox(sandbox, 1800)
    await sandbox.arefresh_from_db()
    assert (sandbox.expires_at - before).total_seconds() == pytest.approx(2100, abs=1) and sandbox.extensions == 1
    await services.stop_sandbox(sandbox)
