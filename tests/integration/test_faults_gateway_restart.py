"""The Docker gateway restarts (killed -9, started again) under a running docker-workspace
sandbox: the learner's `docker` fails meanwhile with a message, the sandbox is not marked lost by
the reaper, `docker` works again once the gateway is back, and stopping leaves nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from sandbox import reaper, services
from sandbox.models import Sandbox

from .gateway_helpers import gateway_images  # noqa: F401
from .lifecycle_helpers import cleanup, make_user, only  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def run_gateway() -> subprocess.Popen:
    env = {**os.environ, "TUTORIAL_DATA_DIR": str(settings.DATA_DIR)}
    return subprocess.Popen([sys.executable, "manage.py", "run_gateway", "--interval", "0.5"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def docker_answers(sandbox, attempts: int = 40) -> str:
    for _ in range(attempts):
        result = await services.run_script(sandbox, "docker ps -q >/dev/null && echo GATEWAY-OK", timeout=10)
        if "GATEWAY-OK" in result.output:
            return result.output
        await asyncio.sleep(0.5)
    return result.output


async def test_gateway_restart_under_a_running_sandbox(gateway_images, cleanup, labelled_leftovers):
    gateway = run_gateway()
    try:
        for _ in range(100):
            if (Path(settings.DATA_DIR) / "gateway-private" / "run_gateway.pid").exists():
                break
            await asyncio.sleep(0.1)
        sandbox = await services.start_sandbox(await make_user(), "gateway-fault", "docker", "docker")
        cleanup.append(sandbox)
        assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
        assert "GATEWAY-OK" in await docker_answers(sandbox)

        os.kill(gateway.pid, signal.SIGKILL)
        gateway.wait()
        down = await services.run_script(sandbox, "docker ps 2>&1; echo EXIT=$?", timeout=10)
        assert "EXIT=0" not in down.output and "docker" in down.output.lower(), down.output
        report = await reaper.reap_once(only(sandbox))
        assert not report.marked_gone and not report.stuck_failed
        await sandbox.arefresh_from_db()
        assert sandbox.state == Sandbox.State.RUNNING

        gateway = run_gateway()
        assert "GATEWAY-OK" in await docker_answers(sandbox)  # back, with no step by anyone
        # ... and so is the registry API the new gateway opened inside the running sandbox.
        # (opened in the same pass as the docker socket, so at most a moment later).
        for _ in range(20):
            tags = await services.run_script(sandbox, "wget -qO- http://127.0.0.1:5000/v2/library/hello/tags/list", timeout=10)
            if '"tags":["latest"]' in tags.output:
                break
            await asyncio.sleep(0.25)
        assert '"tags":["latest"]' in tags.output, tags.output
        await services.stop_sandbox(sandbox)
        assert labelled_leftovers(sandbox.id) == []
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(10)
        except subprocess.TimeoutExpired:
            gateway.kill()
