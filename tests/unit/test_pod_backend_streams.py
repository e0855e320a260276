"""The pod backend's streams against a small fake of the Kubernetes API's channel protocol (an
aiohttp server on 127.0.0.1): fast checks of the framing; the real cluster is in tests/contract."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from sandbox.backends import k8s_api, k8s_manifests
from sandbox.backends.base import BackendError
from sandbox.backends.pod import PodBackend

PODS = "/api/v1/namespaces/ns/pods"


class Configuration:
    refresh_api_key_hook = None
    api_key = {"BearerToken": "Bearer test-token"}
    api_key_prefix: dict = {}


async def serve(app: web.Application) -> tuple[web.AppRunner, k8s_api.ClusterAPI]:
    """The fake API server on a free loopback port, and a client of it."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, k8s_api.ClusterAPI(lambda: k8s_api.ClusterConfig(f"http://127.0.0.1:{port}", False, Configuration(), "fake"))


@pytest.fixture
async def fake_api():
    seen: dict = {"resizes": [], "exec": [], "headers": []}
    attaches: list[web.WebSocketResponse] = []

    async def log(request):
        seen["log_query"] = dict(request.query)
        return web.Response(body=b"earlier screen\r\n$ ")

    async def attach(request):
        seen["headers"].append(request.headers.get("Authorization"))
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        attaches.append(ws)
        async for message in ws:
            channel, payload = message.data[0], message.data[1:]
            if channel == k8s_api.STDIN:
                await ws.send_bytes(bytes([k8s_api.STDOUT]) + payload)
            elif channel == k8s_api.RESIZE:
                seen["resizes"].append(json.loads(payload))
        return ws

    async def exec_(request):
        command = request.query.getall("command")
        seen["exec"].append(command)
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        script = command[4] if len(command) > 4 else ""
        if k8s_manifests.CONSOLE_TTY in command[-1]:  # a write to the TTY reaches every attach
            for viewer in attaches:
                if not viewer.closed:
                    await viewer.send_bytes(bytes([k8s_api.STDOUT]) + b"\0")
        elif script == "big":
            for _ in range(10):
                await ws.send_bytes(bytes([k8s_api.STDOUT]) + b"x" * 1000)
        elif script != "unstartable":
            await ws.send_bytes(bytes([k8s_api.STDOUT]) + b"out\n")
            await ws.send_bytes(bytes([k8s_api.STDERR]) + b"err\n")
        status = ({"status": "Success"} if script not in ("fail", "unstartable") else
                  {"status": "Failure", "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
                  if script == "fail" else
                  # What the kubelet answers when the runtime cannot start the process at all.
                  {"status": "Failure", "reason": "InternalError",
                   "message": "error executing command in container: failed to exec in container: timeout"})
        await ws.send_bytes(bytes([k8s_api.STATUS]) + json.dumps(status).encode())
        await ws.close()
        return ws

    async def gone(request):
        return web.Response(status=404, text=json.dumps({"message": "pods \"x\" not found"}))

    app = web.Application()
    app.router.add_get(f"{PODS}/p/log", log)
    app.router.add_get(f"{PODS}/p/attach", attach)
    app.router.add_get(f"{PODS}/p/exec", exec_)
    app.router.add_get(f"{PODS}/gone/attach", gone)
    runner, api = await serve(app)
    yield PodBackend(api=api, namespace="ns"), seen
    await api.close()
    await runner.cleanup()


async def test_console_replays_the_log_then_echoes_typing(fake_api):
    backend, seen = fake_api
    console = await backend.open_console("p")
    assert await console.read() == b"earlier screen\r\n$ "
    assert seen["log_query"]["container"] == "shell" and int(seen["log_query"]["limitBytes"]) > 0
    await console.write(b"ls\r")
    assert await console.read() == b"ls\r"
    assert seen["headers"] == ["Bearer test-token"]
    await console.close()
    assert await console.read() == b""


async def test_read_returns_at_most_max_bytes_and_keeps_the_rest(fake_api):
    backend, _seen = fake_api
    console = await backend.open_console("p")
    assert await console.read(5) == b"earli"
    assert await console.read(100) == b"er screen\r\n$ "
    await console.close()


async def test_a_read_only_viewer_cannot_type(fake_api):
    backend, _seen = fake_api
    console = await backend.open_console("p", stdin=False, replay=False)
    with pytest.raises(BackendError):
        await console.write(b"rm -rf ~\r")
    await console.close()


async def test_resize_goes_over_one_reused_control_stream(fake_api):
    backend, seen = fake_api
    await backend.resize("p", 120, 40)
    await backend.resize("p", 80, 24)
    for _ in range(50):
        if len(seen["resizes"]) == 2:
            break
        await asyncio.sleep(0.02)
    assert seen["resizes"] == [{"Width": 120, "Height": 40}, {"Width": 80, "Height": 24}]
    assert len(seen["headers"]) == 1  # one attach for both


async def test_run_returns_output_and_exit_code(fake_api):
    backend, seen = fake_api
    ok = await backend.run("p", "ok", timeout=5)
    assert ok.exit_code == 0 and ok.output == "out\nerr\n" and not ok.timed_out
    failed = await backend.run("p", "fail", timeout=5)
    assert failed.exit_code == 3
    command = seen["exec"][0]
    assert command[:2] == ["/bin/sh", "-c"] and "setsid" in command[2] and command[-1] == "5"


async def test_a_script_the_runtime_could_not_start_is_an_error_that_says_why(fake_api):
    backend, _seen = fake_api
    with pytest.raises(BackendError, match="could not run the script: error executing command in container"):
        await backend.run("p", "unstartable", timeout=5)


async def test_run_cuts_output_but_still_reads_the_exit_code(fake_api):
    backend, _seen = fake_api
    result = await backend.run("p", "big", timeout=5, max_output=2500)
    assert result.truncated and len(result.output) == 2500 and result.exit_code == 0


async def test_a_console_of_a_missing_pod_is_a_clear_error(fake_api):
    backend, _seen = fake_api
    with pytest.raises(BackendError, match="gone"):
        await backend.open_console("gone", replay=False)
    with pytest.raises(BackendError, match="gone"):
        await backend.open_console("gone")


JOIN_SECONDS = 0.3


@pytest.fixture
async def shell_api():
    """A fake API that, like the real one, answers an attach's websocket before the kubelet has
    joined it to the TTY (``JOIN_SECONDS`` later): output in between never reaches it. A resize
    makes the shell redraw its prompt, as a shell at its prompt does on a size change; the log
    holds whole lines only, so the prompt is not in the replay."""
    joined: list[web.WebSocketResponse] = []

    async def log(request):
        return web.Response(body=b"welcome\r\n")

    async def attach(request):
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io",))
        await ws.prepare(request)
        await asyncio.sleep(JOIN_SECONDS)
        if request.query.get("stdout") == "true":
            joined.append(ws)
        async for message in ws:
            if message.data[0] == k8s_api.RESIZE:
                for viewer in list(joined):
                    if not viewer.closed:
                        await viewer.send_bytes(bytes([k8s_api.STDOUT]) + b"\r$ ")
        return ws

    app = web.Application()
    app.router.add_get(f"{PODS}/p/log", log)
    app.router.add_get(f"{PODS}/p/attach", attach)
    runner, api = await serve(app)
    yield PodBackend(api=api, namespace="ns")
    await api.close()
    await runner.cleanup()


async def shown_within(console, seconds: float) -> bytes:
    """What the console shows within ``seconds`` (the replay and live output)."""
    seen = b""
    try:
        async with asyncio.timeout(seconds):
            while b"$ " not in seen:
                seen += await console.read()
    except TimeoutError:
        pass
    return seen


async def test_every_new_viewer_sees_the_prompt_its_first_resize_redraws(shell_api):
    backend = shell_api
    first = await backend.open_console("p")
    await backend.resize("p", 80, 23)  # the first resize of a viewer changes the size: a redraw
    await backend.resize("p", 80, 24)
    assert (await shown_within(first, 3)).endswith(b"$ ")
    # A reload: the new viewer's attach is joined to the TTY a moment after it opens.
    second = await backend.open_console("p")
    await backend.resize("p", 80, 23)
    await backend.resize("p", 80, 24)
    shown = await shown_within(second, 3)
    assert shown.startswith(b"welcome\r\n") and shown.endswith(b"$ ")
    await first.close()
    await second.close()


async def test_a_read_only_viewer_sees_the_prompt_a_redraw_right_after_its_attach_brings(shell_api):
    """The console redraws for a watcher as soon as its attach opens (a resize to the learner's
    size and back): that resize travels on the watcher's own attach, so it comes once joined."""
    backend = shell_api
    learner = await backend.open_console("p")
    await backend.resize("p", 80, 23)
    await backend.resize("p", 80, 24)
    assert (await shown_within(learner, 3)).endswith(b"$ ")
    watcher = await backend.open_console("p", stdin=False)
    await backend.resize("p", 80, 23)
    await backend.resize("p", 80, 24)
    shown = await shown_within(watcher, 3)
    assert shown.startswith(b"welcome\r\n") and shown.endswith(b"$ ")
    await watcher.close()
    await learner.close()


async def test_a_viewer_is_returned_joined_so_output_right_after_reaches_it(shell_api):
    backend = shell_api
    first = await backend.open_console("p", replay=False)
    # Opened while the first one is there: the redraw caused right after it returns (a resize)
    # reaches it, though the fake joins an attach only JOIN_SECONDS after answering it.
    watcher = await backend.open_console("p", stdin=False, replay=False)
    await backend.resize("p", 80, 23)
    assert (await shown_within(watcher, 3)).endswith(b"$ ")
    await first.close()
    await watcher.close()
