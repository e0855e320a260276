"""The console count across the processes ``make run`` serves with (scripts/serve.py, two daphne
processes, the private Redis): the limit holds whichever process a tab lands on, and consoles
that crashed give their places back, so the learner never sees a wrong "Too many consoles"."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import psutil
import pytest
import websocket
from channels_redis.core import RedisChannelLayer

from sandbox import protocol
from tests.daphne_process import running_daphne
from tests.websockets import close_code, read_until_frame

from .classroom_services import REPO
from .test_console_soak import CREATE, LESSON, STOP_ALL, make_run_env, manage_shell

pytestmark = pytest.mark.engine

LIMIT = 2


def open_console(base_url: str, sandbox_id: str, cookie: list) -> tuple[websocket.WebSocket, dict]:
    """Open a console; return it with its first meaningful message ("running" or the close message)."""
    ws = websocket.create_connection(base_url.replace("http", "ws") + f"/ws/sandboxes/{sandbox_id}/console/",
                                     origin=base_url, cookie=f"{cookie[0]}={cookie[1]}", timeout=20)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_TEXT:
            message = json.loads(data)
            if message["type"] == "close" or message == {"type": "state", "state": "running"}:
                return ws, message
        elif opcode == websocket.ABNF.OPCODE_CLOSE:
            return ws, {"type": "closed", "code": int.from_bytes(data[:2], "big")}
    raise AssertionError("no answer from the console")


@pytest.fixture(scope="module")
def make_run_site(tmp_path_factory, docker_client, base_image):
    """One site as ``make run`` serves it, with one learner's running sandbox, for this module."""
    tmp_path = tmp_path_factory.mktemp("console-redis")
    with make_run_env(tmp_path) as env:
        env["TUTORIAL_CONSOLES_PER_USER"] = str(LIMIT)
        [learner] = json.loads(manage_shell(env, f"COUNT = 1\nLESSON = {LESSON!r}\n" + CREATE).splitlines()[-1])
        try:
            with running_daphne(env, tmp_path / "serve.log", ready_path="/healthz", processes=2) as server:
                yield env, server, learner, tmp_path
        finally:
            # A test that failed while Redis was away: stopping a sandbox announces it through Redis.
            subprocess.run([str(REPO / "scripts" / "start-redis.sh")], env=env, timeout=60, capture_output=True)
            manage_shell(env, STOP_ALL)


def send_to_group(redis_url: str, group: str, event: dict) -> None:
    layer = RedisChannelLayer(hosts=[redis_url])
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(layer.group_send(group, event))
        loop.run_until_complete(layer.close_pools())
    finally:
        loop.close()


def test_the_console_limit_holds_across_processes_and_a_crash_gives_places_back(make_run_site):
    env, server, learner, _ = make_run_site
    # Six tabs, one after another: the kernel hands them to either process.
    tabs = [open_console(server.url, learner["sandbox"], learner["cookie"]) for _ in range(6)]
    running = [ws for ws, said in tabs if said["type"] == "state"]
    refused = [said for _, said in tabs if said["type"] != "state"]
    assert len(running) == LIMIT, [said for _, said in tabs]
    assert all(said == {"type": "close", "code": protocol.CLOSE_TOO_MANY_CONSOLES, "retry": True,
                        "reason": protocol.CLOSE_CODES[protocol.CLOSE_TOO_MANY_CONSOLES].reason}
               for said in refused), refused

    # Both open consoles crash (a malformed event, a notice without its message, makes them raise).
    send_to_group(env["REDIS_URL"], f"sandbox-{learner['sandbox']}", {"type": "sandbox.notice"})
    assert [close_code(ws, timeout=30) for ws in running] == [1011] * LIMIT

    # The learner reloads: both places are free again at once, on whichever process.
    again = [open_console(server.url, learner["sandbox"], learner["cookie"]) for _ in range(LIMIT)]
    assert [said for _, said in again] == [{"type": "state", "state": "running"}] * LIMIT
    for ws, _ in tabs + again:
        ws.close()


def test_a_redis_restart_under_open_consoles_closes_none_and_events_come_back(make_run_site):
    env, server, learner, tmp_path = make_run_site
    # The places of the consoles the test before closed come back as their closes reach the server.
    deadline = time.monotonic() + 30
    while True:
        tabs = [open_console(server.url, learner["sandbox"], learner["cookie"]) for _ in range(2)]
        if [said for _, said in tabs] == [{"type": "state", "state": "running"}] * 2 or time.monotonic() > deadline:
            break
        for ws, _ in tabs:
            ws.close()
        time.sleep(0.5)
    assert [said for _, said in tabs] == [{"type": "state", "state": "running"}] * 2
    typer = tabs[0][0]

    pid = int((tmp_path / "redis" / "redis.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.1)
    # Redis is away for longer than the layer's blocking read and its socket timeout: the
    # consoles keep working (keystrokes never touch Redis).
    typer.send_binary(b"sleep 20; echo during-$((2*3))\r")
    read_until_frame(typer, lambda data: isinstance(data, bytes) and b"during-6" in data)
    subprocess.run([str(REPO / "scripts" / "start-redis.sh")], env=env, check=True, timeout=60, capture_output=True)

    # Redis is back (empty: it keeps nothing): events reach both consoles again.
    def notice_arrives(ws) -> None:
        deadline = time.monotonic() + 60
        while True:
            send_to_group(env["REDIS_URL"], f"sandbox-{learner['sandbox']}", {"type": "sandbox.notice", "message": "back"})
            try:
                return read_until_frame(ws, lambda m: m == {"type": "notice", "message": "back"}, timeout=2)
            except AssertionError as exc:
                if "closed" in str(exc) or time.monotonic() > deadline:
                    raise

    for ws, _ in tabs:
        notice_arrives(ws)
    typer.send_binary(b"echo after-$((3*3))\r")
    read_until_frame(typer, lambda data: isinstance(data, bytes) and b"after-9" in data)
    for ws, _ in tabs:
        ws.close()
