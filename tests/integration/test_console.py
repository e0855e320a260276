"""The console websocket against a real engine, through the full ASGI app with a real session."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from sandbox import events, services
from sandbox.models import Sandbox
from tests.websockets import closed_with, connect_console, next_text, read_until

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def running_sandbox(owner, base_image, labelled_leftovers):
    sandbox = await services.start_sandbox(owner, "what-is-a-container", "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    yield sandbox
    await services.stop_sandbox(sandbox)
    # A stop the server began itself (a killed shell) says "stopped" before it removes the
    # container, and runs beside this one: wait for its removal, within a deadline.
    deadline = time.monotonic() + 30
    while labelled_leftovers(sandbox.id) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert labelled_leftovers(sandbox.id) == []


async def test_typed_command_runs_in_the_sandbox(console, running_sandbox, owner):
    ws = await connect_console(console, running_sandbox, owner)
    await read_until(ws, rb"\$ ")
    await ws.send_to(bytes_data=b"echo $((6*7))\r")
    assert b"42" in await read_until(ws, rb"\r\n42\r\n")
    await ws.disconnect()


async def test_resize_reaches_the_tty(console, running_sandbox, owner):
    ws = await connect_console(console, running_sandbox, owner)
    await read_until(ws, rb"\$ ")
    await ws.send_to(text_data=json.dumps({"type": "resize", "cols": 123, "rows": 45}))
    await asyncio.sleep(0.2)
    await ws.send_to(bytes_data=b"stty size\r")
    await read_until(ws, rb"45 123")
    await ws.disconnect()


async def test_reconnect_replays_the_screen_and_keeps_the_shell(console, running_sandbox, owner):
    ws = await connect_console(console, running_sandbox, owner)
    await read_until(ws, rb"\$ ")
    await ws.send_to(bytes_data=b"MARK=remembered; echo first-$((40+2))\r")
    await read_until(ws, rb"first-42")
    await ws.disconnect()

    again = await connect_console(console, running_sandbox, owner)
    await read_until(again, rb"first-42")  # replayed from before the reload
    await again.send_to(bytes_data=b"echo $MARK\r")
    await read_until(again, rb"\r\nremembered\r\n")  # the same shell, its variable still set
    await again.disconnect()


async def test_second_viewer_sees_the_same_console(console, running_sandbox, owner):
    first = await connect_console(console, running_sandbox, owner)
    second = await connect_console(console, running_sandbox, owner)
    await read_until(first, rb"\$ ")
    await first.send_to(bytes_data=b"echo shared-$((2*21))\r")
    await read_until(first, rb"shared-42")
    await read_until(second, rb"shared-42")
    await first.disconnect()
    await second.disconnect()


async def test_exit_gives_a_new_shell_and_the_sandbox_keeps_running(console, running_sandbox, owner):
    ws = await connect_console(console, running_sandbox, owner)
    await read_until(ws, rb"\$ ")
    await ws.send_to(bytes_data=b"echo before > ~/kept.txt; exit\r")
    await read_until(ws, "a new shell".encode())
    await read_until(ws, rb"\$ ")
    await ws.send_to(bytes_data=b"cat ~/kept.txt; echo alive-$((6*7))\r")
    await read_until(ws, rb"alive-42")
    # The new shell owns the terminal: Ctrl-C interrupts its command, not the sandbox.
    await ws.send_to(bytes_data=b"sleep 60\r")
    await asyncio.sleep(0.5)
    await ws.send_to(bytes_data=b"\x03")
    await ws.send_to(bytes_data=b"echo after-$((6*8))\r")
    await read_until(ws, rb"after-48", timeout=5)
    await running_sandbox.arefresh_from_db()
    assert running_sandbox.state == Sandbox.State.RUNNING
    await ws.disconnect()


async def test_ending_the_consoles_init_stops_the_sandbox_and_removes_it(console, running_sandbox, owner, labelled_leftovers):
    ws = await connect_console(console, running_sandbox, owner)
    await read_until(ws, rb"\$ ")
    # The loop that restarts the shell is the learner's own process: killing it ends the sandbox.
    await ws.send_to(bytes_data=b"kill -KILL $PPID\r")
    state = await next_text(ws, timeout=15)
    assert state["type"] == "state" and state["state"] == "stopped"
    await closed_with(ws, 1000)
    await running_sandbox.arefresh_from_db()
    assert running_sandbox.state == Sandbox.State.STOPPED
    # "stopped" is announced before the engine objects are removed; removal follows at once.
    for _ in range(50):
        if not labelled_leftovers(running_sandbox.id):
            break
        await asyncio.sleep(0.2)
    assert labelled_leftovers(running_sandbox.id) == []


async def test_stop_from_elsewhere_tells_open_consoles(console, running_sandbox, owner):
    ws = await connect_console(console, running_sandbox, owner)
    await services.stop_sandbox(running_sandbox)
    state = await next_text(ws)
    assert state == {"type": "state", "state": "stopped"}
    await closed_with(ws, 1000)


# -- refusals ----------------------------------------------------------------------------------

async def test_anonymous_is_closed_with_4401(console, running_sandbox):
    ws = await console(running_sandbox.id, None)
    connected, _ = await ws.connect()
    assert connected
    await closed_with(ws, 4401)


async def test_another_learner_is_closed_with_4403(console, running_sandbox, classmate):
    ws = await console(running_sandbox.id, classmate)
    await ws.connect()
    await closed_with(ws, 4403)


async def test_unknown_sandbox_is_closed_with_4404(console, unknown_sandbox_id, owner):
    ws = await console(unknown_sandbox_id, owner)
    await ws.connect()
    await closed_with(ws, 4404)


async def test_stopped_sandbox_is_closed_with_4409(console, running_sandbox, owner):
    await services.stop_sandbox(running_sandbox)
    ws = await console(running_sandbox.id, owner)
    await ws.connect()
    assert (await next_text(ws))["state"] == "stopped"
    await closed_with(ws, 4409)


async def test_cross_origin_handshake_is_rejected(console, running_sandbox, owner):
    ws = await console(running_sandbox.id, owner, origin="http://evil.example")
    connected, _ = await ws.connect()
    assert not connected


async def test_missing_origin_handshake_is_rejected(console, running_sandbox, owner):
    ws = await console(running_sandbox.id, owner, origin=None)
    connected, _ = await ws.connect()
    assert not connected


async def test_oversize_frame_is_refused_and_the_console_still_works(console, running_sandbox, owner):
    ws = await connect_console(console, running_sandbox, owner)
    await read_until(ws, rb"\$ ")
    await ws.send_to(bytes_data=b"x" * (10 * 1024 * 1024))
    error = await next_text(ws)
    assert error["type"] == "error" and "limited" in error["message"]
    await ws.send_to(bytes_data=b"echo still-$((1+1))\r")
    await read_until(ws, rb"still-2")
    await ws.disconnect()


@pytest.mark.parametrize(
    "control, fragment",
    [
        ({"type": "resize", "cols": -1, "rows": 24}, "between 1 and 1000"),
        ({"type": "resize", "cols": 80, "rows": 5000}, "between 1 and 1000"),
        ({"type": "resize", "cols": "80", "rows": 24}, "integer"),
        ({"type": "launch-missiles"}, "unknown control message type"),
    ],
)
async def test_bad_control_messages_are_refused_and_the_console_stays_healthy(console, running_sandbox, owner, control, fragment):
    ws = await connect_console(console, running_sandbox, owner)
    await read_until(ws, rb"\$ ")
    await ws.send_to(text_data=json.dumps(control))
    error = await next_text(ws)
    assert error["type"] == "error" and fragment in error["message"]
    await ws.send_to(bytes_data=b"echo ok-$((3*3))\r")
    await read_until(ws, rb"ok-9")
    await ws.disconnect()


async def test_message_flood_is_cut_off_cleanly(console, running_sandbox, owner):
    ws = await connect_console(console, running_sandbox, owner)
    for _ in range(1000):
        await ws.send_to(text_data=json.dumps({"type": "ack", "bytes": 0}))
    await closed_with(ws, 4400)
    # The sandbox itself is unharmed: a fresh console works.
    again = await connect_console(console, running_sandbox, owner)
    await again.send_to(bytes_data=b"echo alive\r")
    await read_until(again, rb"alive")
    await again.disconnect()


async def test_too_many_consoles_is_closed_with_4429(console, running_sandbox, owner, settings):
    settings.CONSOLES_PER_USER = 2
    first = await connect_console(console, running_sandbox, owner)
    second = await connect_console(console, running_sandbox, owner)
    third = await console(running_sandbox.id, owner)
    await third.connect()
    await closed_with(third, 4429)
    await first.disconnect()
    await second.disconnect()


async def test_notice_reaches_every_open_console(console, running_sandbox, owner):
    ws = await connect_console(console, running_sandbox, owner)
    await events.send_notice(running_sandbox.id, "Five minutes left in class")
    assert await next_text(ws) == {"type": "notice", "message": "Five minutes left in class"}
    await ws.disconnect()


async def test_a_killed_shell_stops_the_sandbox_and_names_the_signal(console, running_sandbox, owner):
    ws = await connect_console(console, running_sandbox, owner)
    await read_until(ws, rb"\$ ")
    # Kill the login shell (the child of PID 1) from outside the TTY, as the OOM killer would.
    await services.run_script(
        running_sandbox,
        "for p in /proc/[0-9]*; do [ \"$(cut -d' ' -f4 $p/stat)\" = 1 ] && kill -9 ${p#/proc/}; done; true",
        timeout=10,
    )
    state = await next_text(ws, timeout=20)
    assert state == {"type": "state", "state": "stopped", "reason": "The shell was stopped by signal 9."}
    await running_sandbox.arefresh_from_db()
    assert running_sandbox.state == Sandbox.State.STOPPED
