"""A web preview's websockets, through the site's real ASGI application: frames cross both ways
with the learner page's subprotocol, from the opaque-origin page (Origin: null); a link for a
port the sandbox does not publish is refused at the handshake.

The websocket server here is a real one on this machine's 127.0.0.1 (busybox in a lesson image
has none); which ports belong to a sandbox is tested on the real engine in test_web_preview.py,
so the relay test alone lets the port check pass."""

from __future__ import annotations

import uuid

import pytest
from aiohttp import WSMsgType, web

from sandbox import preview
from sandbox.backends.base import PublishedPort

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def echo_server():
    async def socket(request):
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        await ws.send_str(f"hello path={request.path} query={request.query_string}")
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", socket)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]
    await runner.cleanup()


async def test_frames_cross_both_ways_from_an_opaque_origin_page(echo_server, owner, monkeypatch, site_socket):
    async def port_is_published(token):
        preview.read_token(token)  # a genuine, unexpired link is still required
        return None, PublishedPort(str(echo_server), "chat", echo_server, "127.0.0.1", echo_server)

    monkeypatch.setattr(preview, "check", port_is_published)
    link = preview.make_link(uuid.uuid4(), echo_server, owner.pk)
    ws = await site_socket(link + "live?room=1", origin="null", subprotocols=["chat"])
    connected, subprotocol = await ws.connect(timeout=10)
    assert connected and subprotocol == "chat"
    assert await ws.receive_from(timeout=10) == "hello path=/live query=room=1"
    await ws.send_to(text_data="hi")
    assert await ws.receive_from(timeout=10) == "echo:hi"
    await ws.send_to(bytes_data=b"abc")
    assert (await ws.receive_output(timeout=10))["bytes"] == b"cba"
    await ws.disconnect()


async def test_a_link_for_a_port_the_sandbox_does_not_publish_is_refused(owner, site_socket):
    link = preview.make_link(uuid.uuid4(), 5000, owner.pk)
    ws = await site_socket(link, origin="null")
    connected, code = await ws.connect(timeout=10)
    assert not connected and code == 4404
    forged = await site_socket("/preview/not-a-token/", origin="null")
    connected, code = await forged.connect(timeout=10)
    assert not connected and code == 4404
