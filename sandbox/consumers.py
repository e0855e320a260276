"""The console websocket consumer: auth, protocol and flow control, and nothing else.

Each viewer is its own attach to the sandbox's TTY. The keystroke path is websocket frame ->
``stream.write``: no database, no channel layer, no thread hop per keystroke.

A read-only viewer (an instructor watching) never changes the learner's terminal size, yet must see
the idle prompt that no replay holds: once attached it asks the sandbox's writable viewers for
their size (``sandbox.redraw`` through the channel layer) and redraws at it (``ask_for_redraw``);
docs/classroom.md tells the whole rule.

Every way a consumer ends (the browser leaves, a handler raises, the server cancels it) closes
its attach and releases its console slot and group (``release``): an attach nobody reads would
halt the shell's output for every viewer, and a slot never released would lock the learner out.
The channel layer only carries events, so its errors are logged and retried, never the end of a
console.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import events, lifecycle, protocol, services, texts
from .backends.base import BackendError, ConsoleStream, EngineUnavailable
from .console_slots import HEARTBEAT_SECONDS, ConsoleSlot
from .models import Sandbox, read_sandbox
from .permissions import Access, access_group, aconsole_access

log = logging.getLogger(__name__)

ACTIVITY_FLUSH_SECONDS = 30
# How long closing an engine attach may take before the clean-up goes on without waiting.
STREAM_CLOSE_SECONDS = 5.0
# A console whose group join failed (Redis away) tries again this often.
REJOIN_RETRY_SECONDS = 2.0
# A console may wait for a sandbox in these states (it attaches when "running" arrives).
WAITABLE_STATES = (Sandbox.State.QUEUED, Sandbox.State.STARTING)
# How long a read-only viewer waits for a writable viewer to answer its request for a redraw
# before it concludes there is none (the learner closed the tab) and redraws at its own size.
REDRAW_ANSWER_SECONDS = 1.0


def parse_sandbox_id(value) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


@database_sync_to_async
def sandbox_row(sandbox_id: uuid.UUID) -> Sandbox | None:
    """The sandbox's row, read in the hop that also closes stale database connections (as
    Channels does before each handler)."""
    return read_sandbox(sandbox_id)


def state_text(state: str, reason: str = "", position: int | None = None) -> str:
    """A state message; a queued sandbox's carries its place in the queue (1 = next)."""
    message = json.loads(protocol.state_message(state, reason))
    if position is not None:
        message["position"] = position
    return json.dumps(message)


TIMER_FIELDS = ("seconds_left", "session_seconds_left", "idle_seconds_left", "idle_seconds")


def timer_text(fields: dict) -> str:
    return json.dumps({"type": "timer", **{name: fields.get(name) for name in TIMER_FIELDS},
                       "extensions_left": fields.get("extensions_left", 0)})


class ConsoleConsumer(AsyncWebsocketConsumer):
    access_group: str | None = None  # joined for viewers other than the owner
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Set before connect(): release() runs on every exit path, even one before connect().
        self.stream: ConsoleStream | None = None
        self.sandbox: Sandbox | None = None
        self.slot: ConsoleSlot | None = None
        self.groups: list[str] = []  # the sandbox's, and the viewer's access group if not the owner
        self.joined = False
        self.tasks: list[asyncio.Task] = []
        self.reader_task: asyncio.Task | None = None
        self.unacked = 0
        self.window_open = asyncio.Event()
        self.window_open.set()
        self.bucket = protocol.TokenBucket(rate=200, burst=400, now=time.monotonic())
        self.input_since_flush = False
        self.resized_once = False
        self.size: tuple[int, int] | None = None  # (cols, rows): this viewer's last resize
        self.redraw_pacer = protocol.RedrawPacer(protocol.REDRAW_EVERY_SECONDS)
        self.redraw_tasks: set[asyncio.Task] = set()  # a redraw planned, or a read-only viewer's request
        self.redraw_asker = ""  # the newest read-only viewer waiting for the planned redraw
        self.redraw_answered = asyncio.Event()  # a writable viewer answered this read-only viewer
        self.redrawn = False  # this read-only viewer has had its redraw at the learner's size
        self.redraw_lock = asyncio.Lock()
        self.closing = False
        self.released = False
        self.read_only = True
        self.language = ""  # the viewer's: every text sent is translated into it (sandbox.texts)

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A crash or a cancellation skips disconnect(): release here as well (it runs once).
            await self.release()

    async def connect(self):
        # Accept first: a custom close code can only be sent on an open websocket.
        await self.accept()
        self.language = texts.viewer_language(self.scope)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.close_with(protocol.CLOSE_NOT_SIGNED_IN)
        sandbox_id = parse_sandbox_id(self.scope["url_route"]["kwargs"].get("sandbox_id"))
        if sandbox_id is None:
            return await self.close_with(protocol.CLOSE_NO_SUCH_SANDBOX)
        # Join the sandbox's group before reading its row, so no state change is missed between
        # the read and the join (a queued or starting sandbox's console waits for "running"), with
        # one read of the row. Events reach this consumer only after connect() returns, and are
        # ignored unless access was granted (self.sandbox is set); release() leaves the group.
        await self.join(events.group_name(sandbox_id))
        sandbox = await sandbox_row(sandbox_id)
        if sandbox is None:
            return await self.close_with(protocol.CLOSE_NO_SUCH_SANDBOX)
        if sandbox.owner_id != user.pk:
            # Someone else's console (an instructor's): join the viewer's access group before the
            # check, so a change committed in between still arrives (access_changed).
            self.access_group = access_group(user.pk)
            await self.join(self.access_group)
        # Async: an instructor watching a learner (classroom) is decided by a database query.
        access = await aconsole_access(user, sandbox)
        if access is Access.NONE:
            return await self.close_with(protocol.CLOSE_NOT_YOURS)
        if sandbox.state not in (Sandbox.State.RUNNING, *WAITABLE_STATES):
            await self.send(text_data=state_text(sandbox.state, self.say(sandbox.failure_reason)))
            return await self.close_with(protocol.CLOSE_NOT_RUNNING)
        self.slot = ConsoleSlot(self.channel_layer, user.pk, self.channel_name)
        if not await self.slot.acquire(settings.CONSOLES_PER_USER):
            await self.send(text_data=protocol.error_message(self.say(texts.TOO_MANY_CONSOLES)))
            return await self.close_with(protocol.CLOSE_TOO_MANY_CONSOLES)
        self.sandbox = sandbox
        self.read_only = access is Access.READ_ONLY
        self.tasks.append(asyncio.create_task(self.keep_up()))
        if sandbox.state == Sandbox.State.RUNNING:
            await self.attach(row_is_fresh=True)
        else:
            position = await services.queue_position(sandbox)
            await self.send(text_data=state_text(sandbox.state, self.say(sandbox.failure_reason), position))

    async def dispatch(self, message):
        """Frames from the browser (keystrokes, acks, resizes) go straight to their handler.

        Channels' dispatch first closes stale database connections, through the one thread every
        consumer and view of the process shares for sync work: each keystroke and each ack (one
        per output frame, hundreds a second under a flood) waited for that thread, behind any
        database work of a whole class. Nothing a frame's handler does touches the database, and
        every other message (channel-layer events, disconnect) still goes through it; connect
        closes them with its own first read."""
        if message["type"] == "websocket.receive":
            return await self.websocket_receive(message)
        if message["type"] == "websocket.connect":
            # connect()'s first database work (sandbox_row) closes stale connections in its own
            # hop to the worker thread: Channels' close here would be a second hop per console.
            return await self.websocket_connect(message)
        if not hasattr(self, get_handler_name(message)):
            # During a rolling update, a process of the newer site can send an event this version
            # has no handler for: Channels would raise and close a learner's console for it.
            log.info("console: an event of type %r has no handler here; ignored", message["type"])
            return None
        return await super().dispatch(message)

    def say(self, text: str) -> str:
        """``text`` in this viewer's language (sandbox.texts knows the server's own texts)."""
        return texts.translate_for(self.language or "en", text)

    async def close_with(self, code: int, reason: str = ""):
        """Tell the page why (and whether to reconnect), then close with ``code``."""
        self.closing = True
        await self.send(text_data=protocol.close_message(code, self.say(reason or protocol.CLOSE_CODES[code].reason)))
        await self.close(code=code)

    async def send_event(self, text: str) -> bool:
        """Send the text of a channel-layer event to the page; False when the page has gone.

        An event can arrive after the browser closed the socket and before this consumer's
        disconnect is dispatched (a page left just as a broadcast, a timer or a stop is sent): the
        server then refuses the send (daphne: "Attempt to send on a closed protocol"). That is an
        ordinary navigation, not a crash of the application; disconnect() releases the rest."""
        try:
            await self.send(text_data=text)
        except Exception:  # noqa: BLE001 - the browser has gone
            log.debug("console of %s: the websocket closed before an event", self.sandbox.id if self.sandbox else "?")
            self.closing = True
            return False
        return True

    async def join(self, group: str) -> None:
        """Join a group now (and again from keep_up while open)."""
        self.groups.append(group)
        await self.join_groups([group])

    async def join_groups(self, groups: list[str] | None = None) -> None:
        """Join (or re-join) groups; a channel-layer error is logged, not fatal (keep_up retries)."""
        self.joined = True
        for group in self.groups if groups is None else groups:
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except Exception as exc:  # noqa: BLE001 - Redis away: the console works, events wait
                log.warning("console could not join %s (%r); trying again", group, exc)
                self.joined = False

    async def keep_up(self):
        """While open: keep this console's slot alive, keep its group membership (a restarted
        Redis forgot it; a group lapses after a day), and flush learner activity."""
        idle = lifecycle.policy_for(self.sandbox.lesson).idle_seconds
        flush_every = max(1.0, min(ACTIVITY_FLUSH_SECONDS, idle / 4)) if idle else ACTIVITY_FLUSH_SECONDS
        loop = asyncio.get_running_loop()
        # connect() has just taken the slot and joined the groups: the first beat is a heartbeat
        # later (a refresh and a re-join at once cost every new console two more Redis calls, a
        # class's worth of them while its consoles open).
        next_beat = loop.time() + HEARTBEAT_SECONDS
        next_flush = loop.time() + flush_every
        while True:
            now = loop.time()
            if now >= next_beat or not self.joined:
                await self.slot.refresh()
                await self.join_groups()
                next_beat = now + HEARTBEAT_SECONDS
            if now >= next_flush:
                next_flush = now + flush_every
                if self.input_since_flush:
                    self.input_since_flush = False
                    try:
                        await services.touch(self.sandbox.id)
                    except Exception:  # noqa: BLE001 - activity is best effort; the next flush retries
                        self.input_since_flush = True
                        log.exception("could not record activity of %s", self.sandbox.id)
            wake = min(next_flush, next_beat if self.joined else now + REJOIN_RETRY_SECONDS)
            await asyncio.sleep(max(0.05, wake - loop.time()))

    async def attach(self, *, row_is_fresh: bool = False):
        """Open this viewer's attach to the running sandbox's TTY and start pumping output.
        The row is read again (for its engine ref) unless the caller has just read it."""
        if self.stream is not None or self.closing or self.released:
            return
        sandbox = self.sandbox
        if not row_is_fresh:
            await sandbox.arefresh_from_db()
        try:
            stream = await services.get_backend(sandbox.workspace).open_console(
                sandbox.engine_ref, stdin=not self.read_only, replay=True
            )
        except EngineUnavailable as exc:
            return await self.engine_down(exc)
        except BackendError as exc:
            await self.send(text_data=protocol.error_message(self.say(str(exc))))
            try:
                await services.console_ended(sandbox.id)
            except EngineUnavailable as down:
                return await self.engine_down(down)
            return await self.close_with(protocol.CLOSE_NOT_RUNNING)
        if self.released or self.closing:  # ended while the attach was being opened
            await stream.close()
            return
        self.stream = stream
        await self.send(text_data=protocol.state_message("running"))
        self.reader_task = asyncio.create_task(self.pump_output())
        self.tasks.append(self.reader_task)
        if self.read_only:
            # Asked only now, so the redraw's output reaches this attach (a writable viewer
            # redraws on its own first resize).
            self.start_redraw_task(self.ask_for_redraw())

    async def engine_down(self, exc: Exception):
        """The engine does not answer: say so, and close with a code the page retries on."""
        await self.send(text_data=protocol.error_message(self.say(texts.render(texts.ENGINE_DOWN, error=str(exc)))))
        await self.close_with(protocol.CLOSE_ENGINE_UNAVAILABLE)

    async def pump_output(self):
        """Engine -> browser, pausing while this viewer has too much unacknowledged output.

        The pause is the console's backpressure (a `yes` flood waits for the browser), but the
        engine copies the TTY's output to every attach in turn: an attach left unread halts the
        output for every viewer of the sandbox. So a viewer whose window stays full for
        SLOW_VIEWER_SECONDS is dropped (its attach closed at once); its page reconnects and gets
        the replay."""
        try:
            while True:
                if not self.window_open.is_set():
                    try:
                        await asyncio.wait_for(self.window_open.wait(), protocol.SLOW_VIEWER_SECONDS)
                    except asyncio.TimeoutError:
                        log.info("console viewer of %s fell behind by %d bytes; dropped", self.sandbox.id, self.unacked)
                        await self.close_stream()
                        return await self.close_with(protocol.CLOSE_TOO_SLOW)
                data = await self.stream.read(65536)
                if not data:
                    break
                self.unacked += len(data)
                if self.unacked > protocol.MAX_UNACKED_BYTES:
                    self.window_open.clear()
                try:
                    await self.send(bytes_data=data)
                except Exception:  # noqa: BLE001 - the browser has gone: disconnect() releases the rest
                    log.debug("console of %s: the websocket closed under its output", self.sandbox.id)
                    return await self.close_stream()
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken engine stream must not leave the socket hanging
            log.exception("console stream of %s failed", self.sandbox.id)
        await self.close_stream()
        try:
            sandbox = await services.console_ended(self.sandbox.id)
        except EngineUnavailable as exc:
            return await self.engine_down(exc)
        except Exception:  # noqa: BLE001 - e.g. the stop's event could not be sent: still close
            log.exception("ending the console of %s failed", self.sandbox.id)
            sandbox = await Sandbox.objects.filter(pk=self.sandbox.id).afirst()
        if sandbox is not None and sandbox.state == Sandbox.State.RUNNING:
            # The engine ended this attach, yet the sandbox runs: not the end of the console. The
            # page reconnects (a new attach, with the replay).
            log.warning("console attach of %s ended while the sandbox runs; the page reconnects", self.sandbox.id)
            return await self.close_with(protocol.CLOSE_ATTACH_LOST)
        state = sandbox.state if sandbox else "gone"
        await self.send(text_data=protocol.state_message(state, self.say(sandbox.failure_reason) if sandbox else ""))
        await self.close_with(protocol.CLOSE_NORMAL)

    async def close_stream(self):
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                # Bounded: a wedged engine that never takes the last bytes must not hold up the
                # rest of the clean-up (the close itself has begun either way).
                await asyncio.wait_for(stream.close(), STREAM_CLOSE_SECONDS)
            except Exception:  # noqa: BLE001 - closing must never stop the rest of the clean-up
                log.exception("closing a console attach of %s failed", self.sandbox.id if self.sandbox else "?")

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
            await self.send(text_data=protocol.error_message(self.say(texts.TOO_MANY_MESSAGES)))
            return await self.close_with(protocol.CLOSE_FLOOD)
        if bytes_data is not None:
            if len(bytes_data) > protocol.MAX_FRAME_BYTES:
                return await self.send(
                    text_data=protocol.error_message(self.say(texts.render(texts.FRAME_TOO_LARGE, limit=protocol.MAX_FRAME_BYTES)))
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
        elif isinstance(message, protocol.Resize):
            # A read-only viewer's size is only remembered: it may not change the learner's
            # terminal, except to redraw when no writable viewer is there (ask_for_redraw).
            self.size = (message.cols, message.rows)
            if self.read_only:
                return
            try:
                if not self.resized_once:
                    # The engine's log replay holds whole lines only, so a new viewer would miss the
                    # prompt (or a full-screen program's screen): the first resize always redraws.
                    self.resized_once = True
                    self.redraw_pacer.redrawing(asyncio.get_running_loop().time())
                    await self.redraw(message.cols, message.rows)
                else:
                    await services.get_backend(self.sandbox.workspace).resize(
                        self.sandbox.engine_ref, message.cols, message.rows)
            except BackendError as exc:
                await self.send(text_data=protocol.error_message(str(exc)))

    def start_redraw_task(self, coroutine) -> None:
        """Run a redraw's waiting apart from the event handler (an event handler that waits holds up
        every later event of this console); kept until done, and cancelled by release()."""
        task = asyncio.create_task(coroutine)
        self.redraw_tasks.add(task)
        task.add_done_callback(self.redraw_tasks.discard)

    async def redraw(self, cols: int, rows: int) -> None:
        """Make the shell and full-screen programs (vi, top) redraw the screen, which ends at
        ``cols`` x ``rows``: a size change is what makes them redraw (SIGWINCH), so the rows
        change for a moment and come back."""
        backend = services.get_backend(self.sandbox.workspace)
        await backend.resize(self.sandbox.engine_ref, cols, rows - 1 if rows > 1 else rows + 1)
        await backend.resize(self.sandbox.engine_ref, cols, rows)

    async def ask_for_redraw(self) -> None:
        """A read-only viewer has just attached; its replay lacks the prompt line. Ask the writable
        viewers for their size, and redraw at it (the learner's terminal keeps its size). The
        redraw goes from here, not from the writable viewer: on Kubernetes a resize travels on an
        attach of this process, the newest first, so its output comes only once this viewer's
        own attach is joined to the TTY (a redraw sent through another attach may come before).
        If nobody answers, nobody is typing (the learner closed the tab): redraw at this viewer's
        own size, which the learner's page replaces as it reconnects (its first resize redraws).
        Without a size of its own (it sent no resize) this viewer leaves the size alone."""
        try:
            await events.ask_for_redraw(self.sandbox.id, self.channel_name)
        except Exception as exc:  # noqa: BLE001 - the layer is away: writable viewers may be there,
            # and a resize by this viewer could shrink the learner's terminal under their eyes.
            log.warning("console of %s could not ask for a redraw (%r)", self.sandbox.id, exc)
            return
        try:
            await asyncio.wait_for(self.redraw_answered.wait(), REDRAW_ANSWER_SECONDS)
            return
        except asyncio.TimeoutError:
            pass
        if self.size is not None:
            await self.redraw_for_viewer(*self.size, own_size=True)

    async def redraw_for_viewer(self, cols: int, rows: int, *, own_size: bool = False) -> None:
        """A read-only viewer's redraw at ``cols`` x ``rows``: one at the learner's size. One at
        its own size (nobody answered in time) does not count: an answer that comes late after
        all (a busy process) redraws again, giving the learner's size back at once."""
        async with self.redraw_lock:  # one after the other: the learner's size must come last
            if self.redrawn or self.stream is None or self.closing:
                return
            self.redrawn = not own_size
            try:
                await self.redraw(cols, rows)
            except BackendError as exc:
                log.info("console of %s could not redraw for a read-only viewer (%s)", self.sandbox.id, exc)

    async def answer_redraw(self, reply_to: str, *, redraw: bool) -> None:
        """Answer a read-only viewer's request: a writable viewer is here, and (``redraw``) the
        size to redraw at, this viewer's own."""
        event = {"type": "sandbox.redraw.answer"}
        if redraw and self.size is not None and not self.read_only:
            event["size"] = list(self.size)
        try:
            await events.answer_redraw(reply_to, event)
        except Exception as exc:  # noqa: BLE001 - the asker then redraws by itself, at its own size
            log.warning("console of %s could not answer a redraw request (%r)", self.sandbox.id, exc)

    async def answer_redraw_later(self, wait: float) -> None:
        """After the pause, the planned redraw: for the newest read-only viewer that asked during
        it (the ones before it attached earlier, so its redraw reaches them too)."""
        await asyncio.sleep(wait)
        self.redraw_pacer.redrawing(asyncio.get_running_loop().time())
        await self.answer_redraw(self.redraw_asker, redraw=True)

    async def sandbox_state(self, event):
        """A state change from services (another tab pressed Stop, the reaper, an instructor, the
        queue moving). A waiting console attaches when its sandbox runs; "stopping" keeps the
        console open until "stopped"."""
        state = event["state"]
        if self.closing or self.sandbox is None:
            return
        if state == Sandbox.State.RUNNING and self.stream is None:
            return await self.attach()
        if not await self.send_event(state_text(state, self.say(event.get("reason", "")), event.get("position"))):
            return
        if state not in (Sandbox.State.RUNNING, Sandbox.State.STOPPING, *WAITABLE_STATES):
            await self.close_with(protocol.CLOSE_NORMAL)

    async def sandbox_redraw(self, event):
        """A read-only viewer of this sandbox has just attached (in any process) and asks for a
        redraw. A writable viewer answers with its size, for one redraw at most every
        REDRAW_EVERY_SECONDS however many viewers ask: the others are told a redraw is on its way
        (the one planned at the pause's end). One that has not resized yet says it is here: its
        first resize redraws for every viewer. Read-only viewers stay silent."""
        if self.closing or self.sandbox is None or self.read_only:
            return
        reply_to = event["reply_to"]
        if self.stream is None or self.size is None:
            return await self.answer_redraw(reply_to, redraw=False)
        now = asyncio.get_running_loop().time()
        wait = self.redraw_pacer.ask(now)
        if wait == 0:
            self.redraw_pacer.redrawing(now)
            return await self.answer_redraw(reply_to, redraw=True)
        self.redraw_asker = reply_to
        if wait is not None:
            self.start_redraw_task(self.answer_redraw_later(wait))
        await self.answer_redraw(reply_to, redraw=False)

    async def sandbox_redraw_answer(self, event):
        """A writable viewer's answer to this read-only viewer's request (ask_for_redraw): it is
        here, and maybe the size to redraw at (the first such answer is used)."""
        self.redraw_answered.set()
        if self.read_only and event.get("size"):
            cols, rows = event["size"]
            self.start_redraw_task(self.redraw_for_viewer(int(cols), int(rows)))

    async def sandbox_timer(self, event):
        """When the sandbox will stop, and how many extensions are left (after an extension)."""
        if self.sandbox is None:
            return
        await self.send_event(timer_text(event))

    async def sandbox_notice(self, event):
        """A message for whoever watches this console (an instructor's broadcast or take-over)."""
        if self.sandbox is None:
            return
        await self.send_event(protocol.notice_message(self.say(event["message"])))

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
            return await self.close_with(protocol.CLOSE_NOT_YOURS, texts.NO_LONGER_ALLOWED)
        self.read_only = was_read_only or access is Access.READ_ONLY
        if self.read_only and not was_read_only:
            await self.send_event(protocol.notice_message(self.say(texts.NOTICE_CONTROL_ENDED)))

    async def disconnect(self, code):
        await self.release()

    async def release(self):
        """Close the attach, free the console slot, leave the group, record activity: once, on
        every exit path. Each step is on its own, so one failing never skips the others."""
        if self.released:
            return
        self.released = True
        current = asyncio.current_task()
        for task in (*self.tasks, *self.redraw_tasks):
            if task is not current:
                task.cancel()
        await self.close_stream()
        if self.slot is not None:
            await self.slot.release()
        for group in self.groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception as exc:  # noqa: BLE001 - the membership lapses by itself
                log.warning("console could not leave %s (%r)", group, exc)
        if self.input_since_flush and self.sandbox is not None:
            try:
                await services.touch(self.sandbox.id)
            except Exception:  # noqa: BLE001
                log.exception("could not record activity of %s", self.sandbox.id)
