"""The instructor's live dashboard websocket: one group per classroom, events pushed as JSON.

Events come from ``classroom.signals`` with everything a dashboard cell shows, so relaying one
costs no database query. The only queries are the access check at connect and again on an
``access.changed`` event (``classroom.access_events``): a revoked instructor's dashboard, or the
dashboard of a class that ended, closes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from sandbox import protocol, texts
from sandbox.console_slots import HEARTBEAT_SECONDS, ConsoleSlot
from sandbox.permissions import access_group

from .models import group_name
from .permissions import taught_classrooms
from .signals import EVENT_TYPE

LIVE, ENDED = "live", "ended"


@database_sync_to_async
def _dashboard_access(user, classroom_id: int) -> str | None:
    """LIVE, ENDED (the results stay on the page; nothing is live any more) or None."""
    ended_at = taught_classrooms(user).filter(pk=classroom_id).values_list("ended_at", flat=True)
    if not ended_at:
        return None
    return ENDED if ended_at[0] is not None else LIVE


class DashboardConsumer(AsyncWebsocketConsumer):
    group: str | None = None
    user_group: str | None = None
    slot: ConsoleSlot | None = None
    heartbeat: asyncio.Task | None = None

    async def connect(self):
        await self.accept()  # a custom close code needs an open websocket
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.close(code=protocol.CLOSE_NOT_SIGNED_IN)
        self.classroom_id = int(self.scope["url_route"]["kwargs"]["classroom_id"])
        # Each open dashboard holds a slot, counted across processes: a script opening sockets in
        # a loop is refused once the instructor holds DASHBOARDS_PER_USER of them.
        self.slot = ConsoleSlot(self.channel_layer, user.pk, self.channel_name, kind="dashboards")
        if not await self.slot.acquire(settings.DASHBOARDS_PER_USER):
            await self.send(text_data=protocol.error_message(texts.translate_for(
                texts.viewer_language(self.scope), texts.render(texts.TOO_MANY_DASHBOARDS, limit=settings.DASHBOARDS_PER_USER))))
            return await self.close(code=protocol.CLOSE_TOO_MANY_CONSOLES)
        self.heartbeat = asyncio.create_task(self._keep_slot())
        # Join the user's access group before the check, so a revocation committed in between
        # still reaches this socket.
        self.user_group = access_group(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        access = await _dashboard_access(user, self.classroom_id)
        if access != LIVE:
            return await self._refuse(access)
        self.group = group_name(self.classroom_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send(text_data=json.dumps({"kind": "hello", "classroom": self.classroom_id}))

    async def _refuse(self, access: str | None):
        if access == ENDED:
            await self.send(text_data=json.dumps({"kind": "ended", "classroom": self.classroom_id}))
            return await self.close(code=protocol.CLOSE_NOT_RUNNING)
        return await self.close(code=protocol.CLOSE_NOT_YOURS)

    async def dispatch(self, message):
        """A classroom event goes straight to the socket.

        Channels' dispatch first closes stale database connections through the one thread the
        process's consumers share for sync work; behind that thread's queue (consoles recording
        activity, each waiting its turn for SQLite's write lock while a class checks) every event
        of a busy class reached the instructor seconds late. Relaying an event touches no
        database; everything else (connect, access changes, disconnect) still goes through it."""
        if message["type"] == EVENT_TYPE:
            return await self.classroom_event(message)
        return await super().dispatch(message)

    async def receive(self, text_data=None, bytes_data=None):
        # The dashboard only listens; actions go through CSRF-protected POSTs.
        await self.send(text_data=protocol.error_message(texts.translate_for(texts.viewer_language(self.scope), texts.DASHBOARD_ONLY_SENDS)))

    async def classroom_event(self, message):
        await self.send(text_data=json.dumps(message["event"]))

    async def access_changed(self, event):
        """This user's access changed somewhere (revoked, class ended, ...): ask again."""
        if self.group is None:
            return
        access = await _dashboard_access(self.scope["user"], self.classroom_id)
        if access != LIVE:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self._refuse(access)

    async def _keep_slot(self):
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self.slot.refresh()

    async def disconnect(self, code):
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat
        if self.slot is not None:
            await self.slot.release()
        for group in (self.group, self.user_group):
            if group is not None:
                await self.channel_layer.group_discard(group, self.channel_name)
