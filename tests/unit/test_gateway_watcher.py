"""The gateway process's watcher (sandbox/gateway/server.py): a vanished sandbox's cleanup never
holds up the listeners of sandboxes that start meanwhile, and the cleanup retry sweep runs on a
schedule, not only when a sandbox starts or ends.

The engine's container list is faked (``_engine_json``) and the cleanup is replaced by one that
hangs the way a wedged engine makes it hang (up to its budget plus a deadline, ~75 s); the
listeners are real unix sockets."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

import pytest

from sandbox.gateway import cleanup, policy, server
from sandbox.gateway.server import GatewayServer, _is_socket

A, B, C = (f"5e1f0000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))


def console(sandbox_id: str) -> dict:
    return {"Id": sandbox_id.replace("-", "")[:12] * 2, "State": "created", "Labels": {
        policy.LABEL_SANDBOX: sandbox_id, policy.LABEL_OWNER: "7", "tutorial.workspace": "docker",
        "tutorial.install": "tests"}}


@pytest.fixture
def gateway(monkeypatch, settings):
    settings.INSTALL_ID = "tests"
    folder = Path(tempfile.mkdtemp(prefix="gwwatch", dir="/tmp"))
    gw = GatewayServer(data_dir=folder, docker_host="unix:///nonexistent.sock", record_activity=False)
    listed: list[dict] = []

    async def engine_json(path, query=""):
        return list(listed)

    monkeypatch.setattr(gw, "_engine_json", engine_json)
    release = threading.Event()
    cleaned: list[str] = []

    def wedged_cleanup(sandbox_id, **kwargs):
        cleaned.append(sandbox_id)
        release.wait(120)  # the engine does not answer; the test lets it go
        return []

    monkeypatch.setattr(cleanup, "destroy_learner_objects", wedged_cleanup)
    yield gw, listed, cleaned, release
    release.set()


async def test_a_hanging_cleanup_does_not_delay_the_next_sandboxs_listener(gateway):
    gw, listed, cleaned, release = gateway
    listed[:] = [console(A)]
    await gw.reconcile()
    assert _is_socket(gw.socket_path(A))
    listed[:] = []  # A's sandbox is gone: its cleanup hangs on the engine
    # Before, reconcile waited for the cleanup itself: this round would not end for ~75 s.
    await asyncio.wait_for(gw.reconcile(), 30)
    listed[:] = [console(B)]
    await asyncio.wait_for(gw.reconcile(), 30)
    assert _is_socket(gw.socket_path(B)) and not _is_socket(gw.socket_path(A))
    for _ in range(200):
        if cleaned:
            break
        await asyncio.sleep(0.01)
    assert cleaned == [A]
    release.set()  # before the test's loop ends: it waits for the executor's threads
    await gw.cleanups[A]
    await gw.close()


async def test_one_sandbox_never_has_two_cleanups_and_only_a_few_run_at_once(gateway, monkeypatch):
    gw, listed, cleaned, release = gateway
    monkeypatch.setattr(server, "CLEANUP_CONCURRENCY", 1)
    listed[:] = [console(A), console(C)]
    await gw.reconcile()
    listed[:] = [console(C)]
    await gw.reconcile()  # A's cleanup starts and hangs
    listed[:] = [console(A), console(C)]
    await gw.reconcile()  # A comes back under the same id ...
    listed[:] = []
    await gw.reconcile()  # ... and goes again while its first cleanup still runs; C goes too
    for _ in range(50):
        await asyncio.sleep(0.01)
    assert cleaned == [A]  # no second cleanup of A; C waits for a slot
    assert set(gw.cleanups) == {A, C}
    release.set()
    await asyncio.gather(*gw.cleanups.values())
    assert cleaned == [A, C]
    await gw.close()


async def test_the_watcher_starts_the_cleanup_sweep_on_a_schedule(gateway, monkeypatch):
    gw, listed, cleaned, release = gateway
    sweeps: list[tuple] = []
    two = asyncio.Event()

    def sweep_soon(data_dir, docker_host, **kwargs):
        sweeps.append((Path(data_dir), docker_host))
        if len(sweeps) >= 2:
            two.set()

    async def no_events(wake):
        await asyncio.Event().wait()

    monkeypatch.setattr(cleanup, "sweep_soon", sweep_soon)
    monkeypatch.setattr(gw, "_follow_events", no_events)
    monkeypatch.setattr(server, "SWEEP_INTERVAL", 0.05, raising=False)
    watcher = asyncio.create_task(gw.watch(interval=0.01))
    try:
        await asyncio.wait_for(two.wait(), 30)  # no sandbox started or ended meanwhile
    finally:
        watcher.cancel()
    assert sweeps[0] == (gw.data_dir, "unix:///nonexistent.sock")
