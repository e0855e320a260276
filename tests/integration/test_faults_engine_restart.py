"""The Docker engine stops and comes back. While it is down, consoles and starts get a clear
message and nothing is marked lost; when it is back, the reaper stops the sandboxes the restart
ended (with a reason, files of a tmpfs home cannot survive it), leaves no orphan, and the learner
starts again with no manual step.

This test stops the machine's dockerd (SIGTERM, as `systemctl stop` would) and always starts it
again in a `finally` with scripts/start-dockerd.sh, since every other engine test needs it. It is
one bounded test (about 20-40 s); it can also run as a step of its own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import docker
import pytest
from django.conf import settings

from sandbox import reaper, services
from sandbox.models import Sandbox
from tests.websockets import connect_console, read_until

from .lifecycle_helpers import cleanup, make_user, only, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def engine_answers() -> bool:
    try:
        docker.DockerClient(base_url=settings.DOCKER_HOST, timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


async def stop_engine() -> None:
    pid = int(Path("/var/run/docker.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    for _ in range(120):  # dockerd stops its containers first (at most its shutdown timeout)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("dockerd did not stop within 60 s")


def start_engine() -> None:
    subprocess.run([str(ROOT / "scripts" / "start-dockerd.sh")], check=True, timeout=90)


async def test_engine_stops_and_comes_back(console, base_image, cleanup, labelled_leftovers):
    owner = await make_user()
    sandbox = await start(owner)
    cleanup.append(sandbox)
    ws = await connect_console(console, sandbox, owner)
    await read_until(ws, rb"\$ ")
    late = None
    try:
        await stop_engine()
        assert not engine_answers()

        # The open console: a clear message, and a close code the page retries on.
        messages, closed = [], None
        while closed is None:
            message = await ws.receive_output(30)
            if message["type"] == "websocket.close":
                closed = message["code"]
            elif message.get("text"):
                messages.append(json.loads(message["text"]))
        errors = [m["message"] for m in messages if m["type"] == "error"]
        assert any("does not answer" in e and "reconnects by itself" in e for e in errors), messages
        assert closed == 4503, messages

        # A start while the engine is down fails with what to do, not a stack trace.
        late = await start(await make_user())
        cleanup.append(late)
        assert late.state == Sandbox.State.FAILED and "start-dockerd.sh" in late.failure_reason

        # The reaper waits: nothing is marked gone because of an outage.
        report = await reaper.reap_once(only(sandbox, late))
        assert report.engine_problem and not report.marked_gone
        await sandbox.arefresh_from_db()
        assert sandbox.state == Sandbox.State.RUNNING
    finally:
        if not engine_answers():
            start_engine()
    assert engine_answers()

    report = await reaper.reap_once(only(sandbox, late) if late else only(sandbox))
    assert report.stopped_after_engine_restart == [str(sandbox.id)] and not report.engine_problem
    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.STOPPED and sandbox.failure_reason == reaper.ENGINE_RESTARTED
    assert labelled_leftovers(sandbox.id) == []

    await services.restart_sandbox(sandbox)  # the learner's "Start sandbox again"
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    ws = await connect_console(console, sandbox, owner)
    await ws.send_to(text_data='{"type": "resize", "cols": 80, "rows": 24}')
    await read_until(ws, rb"\$ ")
    await ws.disconnect()
    await services.stop_sandbox(sandbox)
    assert labelled_leftovers(sandbox.id) == []
