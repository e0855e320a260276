"""Websockets of a web preview: a learner's page that opens a websocket to its own server (a chat,
a live reload) reaches it through the site, relayed frame by frame.

The token in the path is the credential, exactly as for the preview's HTTP requests
(:func:`sandbox.preview.check`): the same viewer, sandbox and published-port checks run at the
handshake. The preview page runs in an opaque origin, so its browser sends ``Origin: null``: this
route is mounted outside the site's Origin check (the site's own sockets keep it) and never reads
the site's session. Frames are bounded in size; either side closing closes the other.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from channels.generic.websocket import AsyncWebsocketConsumer

from . import preview

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1024 * 1024
CONNECT_SECONDS = 5.0


class PreviewSocket(AsyncWebsocketConsumer):
    upstream: aiohttp.ClientWebSocketResponse | None = None
    session: aiohttp.ClientSession | None = None
    pump: asyncio.Task | None = None

    async def connect(self):
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            _sandbox, target = await preview.check(kwargs["token"])
        except preview.PreviewRefused as exc:
            log.info("preview websocket refused: %s", exc)
            return await self.close(code=4403 if exc.status == 403 else 4404)
        url = f"ws://{target.host}:{target.host_port}/{kwargs.get('path', '')}"
        query = self.scope.get("query_string", b"").decode("latin-1")
        if query:
            url += "?" + query
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_SECONDS))
        try:
            self.upstream = await self.session.ws_connect(
                url, protocols=self.scope.get("subprotocols") or (), max_msg_size=MAX_FRAME_BYTES, autoping=True)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.info("preview websocket to %s failed: %s", target.key, exc)
            await self.session.close()
            return await self.close(code=1011)
        await self.accept(subprotocol=self.upstream.protocol)
        self.pump = asyncio.create_task(self.relay_upstream())

    async def relay_upstream(self):
        """Learner's server -> browser, until either side ends."""
        try:
            async for message in self.upstream:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await self.send(text_data=message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await self.send(bytes_data=message.data)
                else:
                    break
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("preview websocket upstream ended: %s", exc)
        await self.close()

    async def receive(self, text_data=None, bytes_data=None):
        """Browser -> learner's server; an oversized frame ends the relay."""
        if self.upstream is None or self.upstream.closed:
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > MAX_FRAME_BYTES:
            return await self.close(code=1009)
        if text_data is not None:
            await self.upstream.send_str(text_data)
        else:
            await self.upstream.send_bytes(bytes_data or b"")

    async def disconnect(self, code):
        if self.pump is not None and self.pump is not asyncio.current_task():
            self.pump.cancel()
        if self.upstream is not None:
            await self.upstream.close()
        if self.session is not None:
            await self.session.close()
