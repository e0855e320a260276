"""Hostile learners in a real sandbox: the harm stays inside it and the server stays well."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import psutil
import pytest

from sandbox import services
from sandbox.models import Sandbox
from tests.websockets import connect_console, read_until

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def pids_cgroup_dir(container_id: str) -> Path:
    """The container's pids cgroup on the host (cgroup v1 with cgroupfs, or cgroup v2)."""
    for candidate in (
        f"/sys/fs/cgroup/pids/docker/{container_id}",
        f"/sys/fs/cgroup/docker/{container_id}",
        f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope",
    ):
        if Path(candidate, "pids.current").exists():
            return Path(candidate)
    raise AssertionError(f"no pids cgroup found for {container_id}")


def pids_peak(pids_dir: Path) -> int:
    """The most processes the cgroup has held (``pids.peak``, Linux 6.1 and later), else 0."""
    peak = pids_dir / "pids.peak"
    return int(peak.read_text()) if peak.exists() else 0


def forks_refused(pids_dir: Path) -> int:
    """How many forks the pids limit refused (the 'max' counter of pids.events)."""
    for line in (pids_dir / "pids.events").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "max":
            return int(value)
    return 0


@pytest.fixture
async def sandbox_for(base_image, labelled_leftovers):
    made = []

    async def make(user, lesson="what-is-a-container"):
        sandbox = await services.start_sandbox(user, lesson, "plain", "base")
        assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        await services.stop_sandbox(sandbox)
        assert labelled_leftovers(sandbox.id) == []


async def test_fork_bomb_stops_at_the_pids_limit_and_others_stay_responsive(sandbox_for, owner, classmate, docker_client, settings):
    bombed = await sandbox_for(owner)
    neighbour = await sandbox_for(classmate)
    # A shell fork bomb churns: its processes exit when a fork fails. Watch it while it runs.
    bomb = asyncio.create_task(
        services.run_script(bombed, "exec 2>/dev/null; b() { b | b & }; b; sleep 6", timeout=8)
    )
    limit = settings.SANDBOX_LIMITS["pids"]
    pids_dir = pids_cgroup_dir(bombed.engine_ref)
    assert int((pids_dir / "pids.max").read_text()) == limit
    peak = 0
    for _ in range(100):
        current = int((pids_dir / "pids.current").read_text())
        assert current <= limit
        # The kernel's own high-water mark where it keeps one: the bomb's processes come and go
        # faster than this loop samples, so on a busy machine the samples missed the peaks.
        peak = max(peak, current, pids_peak(pids_dir))
        if forks_refused(pids_dir) > 0 and peak >= limit - 5:
            break
        await asyncio.sleep(0.05)
    assert forks_refused(pids_dir) > 0, "the pids limit was never hit"
    assert peak >= limit - 5, f"the fork bomb only reached {peak} processes"

    # While it rages, the neighbour and the engine answer as usual.
    started = time.monotonic()
    check = await services.run_script(neighbour, "echo neighbour-fine", timeout=10)
    assert check.exit_code == 0 and "neighbour-fine" in check.output
    assert time.monotonic() - started < 5, "the neighbour sandbox became unresponsive"
    await bomb


async def test_memory_bomb_is_oom_killed_inside_the_sandbox_only(sandbox_for, owner, docker_client):
    sandbox = await sandbox_for(owner)
    result = await services.run_script(sandbox, "tail /dev/zero", timeout=30)
    assert result.exit_code == 137 and not result.timed_out  # SIGKILL from the OOM killer
    container = await asyncio.to_thread(docker_client.containers.get, sandbox.engine_ref)
    assert container.status == "running"  # the shell (PID 1's child) survives
    after = await services.run_script(sandbox, "echo still-here", timeout=10)
    assert after.exit_code == 0 and "still-here" in after.output


async def test_privileged_operations_are_denied(sandbox_for, owner):
    sandbox = await sandbox_for(owner)
    script = (
        "mount -t tmpfs none /mnt 2>&1; echo mount=$?; "
        "mknod /tmp/sda b 8 0 2>&1; echo mknod=$?; "
        "nsenter -t 1 -m true 2>&1; echo nsenter=$?; "
        "touch /etc/owned 2>&1; echo write_root=$?; "
        "cat /proc/self/status | grep CapEff"
    )
    result = await services.run_script(sandbox, script, timeout=10)
    for operation in ("mount", "mknod", "nsenter", "write_root"):
        assert f"{operation}=0" not in result.output, result.output
    assert "CapEff:\t0000000000000000" in result.output


async def test_yes_flood_is_held_back_memory_stays_flat_and_ctrl_c_works(console, sandbox_for, owner):
    sandbox = await sandbox_for(owner)
    ws = await connect_console(console, sandbox, owner)
    await read_until(ws, rb"\$ ")
    process = psutil.Process()
    rss_before = process.memory_info().rss

    await ws.send_to(bytes_data=b"yes\r")
    # A client that never acks: the server must stop at about 1 MiB unacknowledged.
    received = 0
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        # receive_output's timeout would cancel the app; look first, then take.
        if await ws.receive_nothing(0.2, interval=0.02):
            continue
        message = await ws.receive_output(5)
        received += len(message.get("bytes") or b"")
    assert 0 < received <= 1024 * 1024 + 128 * 1024, received
    rss_growth_mb = (process.memory_info().rss - rss_before) / 2**20
    assert rss_growth_mb < 20, rss_growth_mb

    # Ctrl-C takes effect at once, even while output is held back.
    await ws.send_to(bytes_data=b"\x03")
    await ws.send_to(text_data=json.dumps({"type": "ack", "bytes": received}))
    await ws.send_to(bytes_data=b"echo after-$((5*5))\r")
    await read_until(ws, rb"after-25", timeout=20)
    await ws.disconnect()
