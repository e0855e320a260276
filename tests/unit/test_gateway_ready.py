"""A docker sandbox's start waits for the gateway process's listener: the prompt shows about a
second after Start, and a `docker` typed at once found no daemon when the separate gateway process
had not yet seen the engine's start event."""

from __future__ import annotations

import asyncio

from django.conf import settings

from sandbox.gateway import server


async def test_start_returns_only_once_the_gateway_process_listens(monkeypatch, tmp_path):
    monkeypatch.setattr(server, "gateway_process_running", lambda data_dir=None: True)
    sandbox_id = "5e1f0000-0000-4000-8000-00000000abcd"
    socket_path = settings.DATA_DIR / "gateway" / sandbox_id / server.SOCKET_NAME
    accepted = []

    async def gateway_process_opens_late():
        await asyncio.sleep(0.3)
        socket_path.parent.mkdir(parents=True)
        with server.short_path(socket_path) as bind_path:  # tmp paths are longer than a socket address
            return await asyncio.start_unix_server(lambda r, w: (accepted.append(1), w.close()), path=bind_path)

    opening = asyncio.create_task(gateway_process_opens_late())
    await server.ensure_gateway(sandbox_id, 7, "images")
    listener = await opening
    try:
        assert accepted, "the start returned before the learner's docker could reach the gateway"
    finally:
        listener.close()


async def test_a_listener_that_never_comes_is_waited_for_a_bounded_time(tmp_path):
    assert await server.wait_for_listener(tmp_path / "nothing" / "docker.sock", seconds=0.2) is False
