"""The console websocket consumer: auth, protocol and flow control, and nothing else.

Each viewer is its own attach to the sandbox's TTY. The keystroke path is websocket frame ->
``stream.write``: no database, no channel layer, no thread hop per keystroke.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import lifecycle, protocol, services
from .backends.base import BackendError, ConsoleStream, EngineUnavailable
from .models import Sandbox
from .permissions import Access, access_group, aconsole_access

log = logging.getLogger(__name__)

# Open consoles per user in this process (bounded per CONSOLES_PER_USER).
_open_consoles: Counter[int] = Counter()
ACTIVITY_FLUSH_SECONDS = 30
# A console may wait for a sandbox in these states (it attaches when "running" arrives).
WAITABLE_STATES = (Sandbox.State.QUEUED, Sandbox.State.STARTING)
# The engine does not answer: the page keeps retrying (4409 and the other 44xx codes are final).
CLOSE_ENGINE_UNAVAILABLE = 4503


def state_text(state: str, reason: str = "", position: int | None = None) -> str:
    """A state message; a queued sandbox's carries its place in the queue (1 = next)."""
    message = json.loads(protocol.state_message(state, reason))
    if position is not None:
        message["position"] = position
    return json.dumps(message)


def timer_text(fields: dict) -> str:
    return json.dumps({"type": "timer", "seconds_left": fields.get("seconds_left"),
                       "extensions_left": fields.get("extensions_left", 0)})


class ConsoleConsumer(AsyncWebsocketConsumer):
    access_group: str | None = None  # joined for viewers other than the owner
    stream: ConsoleStream | None = None
    sandbox: Sandbox | None = None

    async def connect(self):
        # Accept first: a custom close code can only be sent on an open websocket.
        await self.accept()
        self.counted_user = None
        self.reader_task = None
        self.flush_task = None
        self.unacked = 0
        self.window_open = asyncio.Event()
        self.window_open.set()
        self.bucket = protocol.TokenBucket(rate=200, burst=400, now=time.monotonic())
        self.input_since_flush = False
        self.resized_once = False
        self.grouped = False
        self.closing = False

        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.close(code=protocol.CLOSE_NOT_SIGNED_IN)
        sandbox_id = self.scope["url_route"]["kwargs"]["sandbox_id"]
        # Join the sandbox's group before reading its row, so no state change is missed between
        # the read and the join (a queued or starting sandbox's console waits for "running"), with
        # one read of the row. Events reach this consumer only after connect() returns, and are
        # ignored unless access was granted (self.sandbox is set); disconnect() leaves the group.
        self.group = services.group_name(sandbox_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.grouped = True
        sandbox = await Sandbox.objects.filter(pk=sandbox_id).afirst()
        if sandbox is None:
            return await self.close(code=protocol.CLOSE_NO_SUCH_SANDBOX)
        if sandbox.owner_id != user.pk:
            # Someone else's console (an instructor's): join the viewer's access group before the
            # check, so a change committed in between still arrives (access_changed).
            self.access_group = access_group(user.pk)
            await self.channel_layer.group_add(self.access_group, self.channel_name)
        # Async: an instructor watching a learner (classroom) is decided by a database query.
        access = await aconsole_access(user, sandbox)
        if access is Access.NONE:
            return await self.close(code=protocol.CLOSE_NOT_YOURS)
        if _open_consoles[user.pk] >= settings.CONSOLES_PER_USER:
            await self.send(text_data=protocol.error_message("Too many consoles open: close a tab and reload."))
            return await self.close(code=protocol.CLOSE_TOO_MANY_CONSOLES)
        if sandbox.state not in (Sandbox.State.RUNNING, *WAITABLE_STATES):
            await self.send(text_data=state_text(sandbox.state, sandbox.failure_reason))
            return await self.close(code=protocol.CLOSE_NOT_RUNNING)
        _open_consoles[user.pk] += 1
        self.counted_user = user.pk
        self.sandbox = sandbox
        self.read_only = access is Access.READ_ONLY
        if sandbox.state == Sandbox.State.RUNNING:
            await self.attach(row_is_fresh=True)
        else:
            position = await services.queue_position(sandbox)
            await self.send(text_data=state_text(sandbox.state, sandbox.failure_reason, position))

    async def attach(self, *, row_is_fresh: bool = False):
        """Open this viewer's attach to the running sandbox's TTY and start pumping output.
        The row is read again (for its engine ref) unless the caller has just read it."""
        if self.stream is not None or self.closing:
            return
        sandbox = self.sandbox
        if not row_is_fresh:
            await sandbox.arefresh_from_db()
        try:
            self.stream = await services.get_backend(sandbox.workspace).open_console(
                sandbox.engine_ref, stdin=not self.read_only, replay=True
            )
        except EngineUnavailable as exc:
            return await self.engine_down(exc)
        except BackendError as exc:
            await self.send(text_data=protocol.error_message(str(exc)))
            try:
                await services.console_ended(sandbox.id)
            except EngineUnavailable as down:
                return await self.engine_down(down)
            return await self.close(code=protocol.CLOSE_NOT_RUNNING)
        await self.send(text_data=protocol.state_message("running"))
        self.reader_task = asyncio.create_task(self.pump_output())
        self.flush_task = asyncio.create_task(self.flush_activity())

    async def engine_down(self, exc: Exception):
        """The engine does not answer: say so, and close with a code the page retries on."""
        await self.send(text_data=protocol.error_message(
            f"{exc} Your sandbox comes back when the engine does; this page reconnects by itself."))
        await self.close(code=CLOSE_ENGINE_UNAVAILABLE)

    async def pump_output(self):
        """Engine -> browser, pausing while this viewer has too much unacknowledged output."""
        try:
            while True:
                await self.window_open.wait()
                data = await self.stream.read(65536)
                if not data:
                    break
                self.unacked += len(data)
                if self.unacked > protocol.MAX_UNACKED_BYTES:
                    self.window_open.clear()
                await self.send(bytes_data=data)
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken engine stream must not leave the socket hanging
            log.exception("console stream of %s failed", self.sandbox.id)
        try:
            sandbox = await services.console_ended(self.sandbox.id)
        except EngineUnavailable as exc:
            return await self.engine_down(exc)
        state = sandbox.state if sandbox else "gone"
        await self.send(text_data=protocol.state_message(state, sandbox.failure_reason if sandbox else ""))
        await self.close(code=1000)

    async def flush_activity(self):
        """Write learner activity to the database at most every ACTIVITY_FLUSH_SECONDS (more often
        when the lesson's idle timeout is short, so typing always counts in time)."""
        idle = lifecycle.policy_for(self.sandbox.lesson).idle_seconds
        every = max(1.0, min(ACTIVITY_FLUSH_SECONDS, idle / 4)) if idle else ACTIVITY_FLUSH_SECONDS
        while True:
            await asyncio.sleep(every)
            if self.input_since_flush:
                self.input_since_flush = False
                await services.touch(self.sandbox.id)

    async def receive(self, text_data=None, bytes_data=None):
        if self.stream is None:
            return
        message: protocol.Resize | protocol.Ack | protocol.ProtocolError | None = None
        if bytes_data is None:
            try:
                message = protocol.parse_control(text_data or "")
            except protocol.ProtocolError as exc:
                message = exc
        # Acks of output we really sent are paced by our own output (a fast `cat` means hundreds
        # a second), so they cost no tokens; everything else does.
        paid = not (isinstance(message, protocol.Ack) and 0 < message.bytes <= self.unacked)
        if paid and not self.bucket.take(time.monotonic()):
            await self.send(text_data=protocol.error_message("Too many messages: slow down."))
            return await self.close(code=protocol.CLOSE_FLOOD)
        if bytes_data is not None:
            if len(bytes_data) > protocol.MAX_FRAME_BYTES:
                return await self.send(
                    text_data=protocol.error_message(f"Input frames are limited to {protocol.MAX_FRAME_BYTES} bytes.")
                )
            if self.read_only:
                return
            self.input_since_flush = True
            try:
                await self.stream.write(bytes_data)
            except BackendError as exc:
                await self.send(text_data=protocol.error_message(str(exc)))
            return
        if isinstance(message, protocol.ProtocolError):
            return await self.send(text_data=protocol.error_message(str(message)))
        if isinstance(message, protocol.Ack):
            self.unacked = max(0, self.unacked - message.bytes)
            if self.unacked <= protocol.MAX_UNACKED_BYTES:
                self.window_open.set()
        elif isinstance(message, protocol.Resize) and not self.read_only:
            backend = services.get_backend(self.sandbox.workspace)
            try:
                if not self.resized_once:
                    # The engine's log replay holds whole lines only, so a new viewer would miss the
                    # prompt (or a full-screen program's screen). A size change makes the shell and
                    # programs like vi or top redraw, so the first resize always changes the size.
                    self.resized_once = True
                    other_rows = message.rows - 1 if message.rows > 1 else message.rows + 1
                    await backend.resize(self.sandbox.engine_ref, message.cols, other_rows)
                await backend.resize(self.sandbox.engine_ref, message.cols, message.rows)
            except BackendError as exc:
                await self.send(text_data=protocol.error_message(str(exc)))

    async def sandbox_state(self, event):
        """A state change from services (another tab pressed Stop, the reaper, an instructor, the
        queue moving). A waiting console attaches when its sandbox runs; "stopping" keeps the
        console open until "stopped"."""
        state = event["state"]
        if self.closing or self.sandbox is None:
            return
        if state == Sandbox.State.RUNNING and self.stream is None:
            return await self.attach()
        await self.send(text_data=state_text(state, event.get("reason", ""), event.get("position")))
        if state not in (Sandbox.State.RUNNING, Sandbox.State.STOPPING, *WAITABLE_STATES):
            self.closing = True
            await self.close(code=1000)

    async def sandbox_timer(self, event):
        """When the sandbox will stop, and how many extensions are left (after an extension)."""
        if self.sandbox is None:
            return
        await self.send(text_data=timer_text(event))

    async def sandbox_notice(self, event):
        """A message for whoever watches this console (an instructor's broadcast or take-over)."""
        if self.sandbox is None:
            return
        await self.send(text_data=protocol.notice_message(event["message"]))

    async def access_changed(self, event):
        """This viewer's access may have changed (control given back, learner removed, lesson
        unassigned, instructor revoked, class ended): ask the rule again, once per event, never
        per keystroke. Writing stops before the query; watching ends with 4403 if nothing is left.
        A read-only viewer is never raised to full here: its attach has no stdin."""
        if self.closing or self.sandbox is None:
            return
        was_read_only, self.read_only = self.read_only, True
        access = await aconsole_access(self.scope["user"], self.sandbox)
        if access is Access.NONE:
            self.closing = True
            await self.send(text_data=protocol.notice_message("You no longer have access to this terminal."))
            return await self.close(code=protocol.CLOSE_NOT_YOURS)
        self.read_only = was_read_only or access is Access.READ_ONLY
        if self.read_only and not was_read_only:
            await self.send(text_data=protocol.notice_message("You no longer have control: watching read-only."))

    async def disconnect(self, code):
        for task in (self.reader_task, self.flush_task):
            if task is not None:
                task.cancel()
        if self.stream is not None:
            await self.stream.close()
        if self.grouped:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.access_group is not None:
            await self.channel_layer.group_discard(self.access_group, self.channel_name)
            if self.input_since_flush and self.sandbox is not None:
                await services.touch(self.sandbox.id)
        if self.counted_user is not None:
            _open_consoles[self.counted_user] -= 1
            if _open_consoles[self.counted_user] <= 0:
                del _open_consoles[self.counted_user]
            self.counted_user = None
