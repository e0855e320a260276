"""Viewers of one sandbox must not stall each other or the sandbox, on the real engine.

The engine copies a TTY's output to every attach in turn: an attach that nobody reads (a viewer
that stopped acking, a consumer that crashed or was killed without closing it) halts the shell's
output for every viewer. And a consumer that ends any way at all gives its console slot back.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import websocket
from channels.layers import get_channel_layer

from sandbox import events, protocol, services
from sandbox.models import Sandbox
from tests.daphne_process import running_daphne
from tests.websockets import close_message, closed_with, connect_console, read_until

from .classroom_services import REPO

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

# More than the flow-control window and the engine's and kernel's buffers together (the halt
# came at about 4.4 MB), so output stalled behind one viewer cannot all fit in buffers.
FLOOD_BYTES = 12_000_000
FLOOD = f"head -c {FLOOD_BYTES} /dev/zero | tr '\\0' a; echo; echo END-$((3+4))\r".encode()


@pytest.fixture
async def running_sandbox(owner, base_image, labelled_leftovers):
    sandbox = await services.start_sandbox(owner, "what-is-a-container", "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    yield sandbox
    await services.stop_sandbox(sandbox)
    assert labelled_leftovers(sandbox.id) == []


async def read_flood(communicator, marker: bytes = b"END-7", timeout: float = 120.0) -> int:
    """Read and ack like xterm.js until ``marker``; return the bytes received (keeps a tail only)."""
    received, tail = 0, b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while marker not in tail:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"{marker!r} not seen after {received} bytes")
        message = await communicator.receive_output(remaining)
        if message["type"] == "websocket.close":
            raise AssertionError(f"closed ({message.get('code')}) after {received} bytes")
        if message.get("bytes"):
            received += len(message["bytes"])
            tail = (tail + message["bytes"])[-64:]
            await communicator.send_to(text_data=json.dumps({"type": "ack", "bytes": len(message["bytes"])}))
    return received


async def test_a_viewer_that_never_acks_is_dropped_and_the_other_gets_all_the_output(console, running_sandbox, owner):
    stalled = await connect_console(console, running_sandbox, owner)  # a tab that stopped reading
    reader = await connect_console(console, running_sandbox, owner)
    await read_until(reader, rb"\$ ")
    await reader.send_to(bytes_data=FLOOD)
    assert await read_flood(reader) > FLOOD_BYTES  # past the point where every viewer halted

    said = close_message(await closed_with(stalled, protocol.CLOSE_TOO_SLOW, timeout=30))
    assert said == {"type": "close", "code": protocol.CLOSE_TOO_SLOW, "retry": True,
                    "reason": protocol.CLOSE_CODES[protocol.CLOSE_TOO_SLOW].reason}
    # The dropped page reconnects and gets the replay; the shell is the same and answers.
    again = await connect_console(console, running_sandbox, owner)
    await again.send_to(bytes_data=b"echo back-$((5*5))\r")
    await read_until(again, rb"back-25")
    await reader.disconnect()
    await again.disconnect()


async def test_a_consumer_killed_mid_stream_closes_its_attach_and_the_shell_stays_responsive(console, running_sandbox, owner):
    killed = await connect_console(console, running_sandbox, owner)
    other = await connect_console(console, running_sandbox, owner)
    await read_until(killed, rb"\$ ")
    await killed.send_to(bytes_data=FLOOD)
    await read_until(killed, rb"aaaa")  # output is flowing
    # The server kills the consumer (as daphne does to an application it gives up on): nothing
    # of its own runs after this, so only an exit path that closes the attach keeps the shell going.
    killed.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await killed.future
    assert await read_flood(other) > FLOOD_BYTES // 2
    await other.send_to(bytes_data=b"echo alive-$((6*6))\r")
    await read_until(other, rb"alive-36")
    await other.disconnect()


async def test_a_crashed_console_gives_its_place_back(console, running_sandbox, owner, settings):
    settings.CONSOLES_PER_USER = 1
    first = await connect_console(console, running_sandbox, owner)
    await read_until(first, rb"\$ ")
    # A malformed event (a notice without its message) makes the consumer's handler raise: it
    # crashes, as it did on every Redis read timeout (daphne then closes the websocket with 1011).
    await get_channel_layer().group_send(events.group_name(running_sandbox.id), {"type": "sandbox.notice"})
    with pytest.raises(KeyError):
        while True:  # output still on its way comes first
            await first.receive_output(10)
    # The learner's page reconnects: the one place is free again, so no "Too many consoles".
    again = await connect_console(console, running_sandbox, owner)
    await again.send_to(bytes_data=b"echo after-$((4*4))\r")
    await read_until(again, rb"after-16")
    await again.disconnect()


@pytest.mark.parametrize("path", ["/ws/sandboxes/not-a-uuid/console/", "/ws/sandboxes/1/console/",
                                  "/ws/sandboxes/%s/console/extra/"])
async def test_a_console_url_that_is_not_a_uuid_is_closed_with_4404(site_socket, owner, path, unknown_sandbox_id):
    communicator = await site_socket(path.replace("%s", unknown_sandbox_id), owner)
    connected, _ = await communicator.connect()
    assert connected
    said = close_message(await closed_with(communicator, protocol.CLOSE_NO_SUCH_SANDBOX, timeout=30))
    assert said["retry"] is False


def test_through_daphne_a_bad_console_url_is_a_clean_close_not_a_500(tmp_path):
    env = {**os.environ, "TUTORIAL_SQLITE_PATH": str(tmp_path / "db.sqlite3"), "TUTORIAL_DATA_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "tutorial.settings"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                   timeout=180, capture_output=True)
    log_path = tmp_path / "daphne.log"
    with running_daphne(env, log_path, ready_path="/healthz") as server:
        for path in ("/ws/sandboxes/not-a-uuid/console/", "/ws/sandboxes/anything/"):
            ws = websocket.create_connection(server.url.replace("http", "ws") + path, origin=server.url, timeout=10)
            try:
                ws.recv_data()  # the close message
                opcode, data = ws.recv_data(control_frame=True)
                assert opcode == websocket.ABNF.OPCODE_CLOSE
                # Anonymous here, so "sign in" comes first; what matters is a clean close.
                assert int.from_bytes(data[:2], "big") == protocol.CLOSE_NOT_SIGNED_IN
            finally:
                ws.close()
    assert "Traceback" not in log_path.read_text(errors="replace")
