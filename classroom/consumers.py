"""The instructor's live dashboard websocket: one group per classroom, events pushed as JSON.

Events come from ``classroom.signals`` with everything a dashboard cell shows, so relaying one
costs no database query; the only query is the ownership check at connect.
"""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from sandbox import protocol

from .models import Classroom, group_name


@database_sync_to_async
def _teaches(user, classroom_id: int) -> bool:
    return Classroom.objects.filter(pk=classroom_id, instructor_id=user.pk).exists()


class DashboardConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self):
        await self.accept()  # a custom close code needs an open websocket
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.close(code=protocol.CLOSE_NOT_SIGNED_IN)
        classroom_id = self.scope["url_route"]["kwargs"]["classroom_id"]
        if not await _teaches(user, classroom_id):
            return await self.close(code=protocol.CLOSE_NOT_YOURS)
        self.group = group_name(classroom_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send(text_data=json.dumps({"kind": "hello", "classroom": classroom_id}))

    async def receive(self, text_data=None, bytes_data=None):
        # The dashboard only listens; actions go through CSRF-protected POSTs.
        await self.send(text_data=protocol.error_message("This websocket only sends."))

    async def classroom_event(self, message):
        await self.send(text_data=json.dumps(message["event"]))

    async def disconnect(self, code):
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
