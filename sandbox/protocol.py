"""The console websocket protocol: parsing and validation, free of I/O (unit-tested alone).

Binary frames carry terminal bytes both ways. Text frames carry JSON control messages:
client ``{"type": "resize", "cols": c, "rows": r}`` and ``{"type": "ack", "bytes": n}``;
server ``{"type": "state", "state": ...}``, ``{"type": "error", "message": ...}``,
``{"type": "notice", "message": ...}`` (from an instructor) and, just before the server closes the
websocket, ``{"type": "close", "code": c, "retry": true|false, "reason": ...}``: the page shows the
reason and reconnects (with backoff) only when ``retry`` is true. Daphne drops a close frame's
reason text, so it travels here; and the page needs no copy of the close codes below.
"""

from __future__ import annotations

import dataclasses
import json

# Marks the close reasons for translation (sandbox.texts translates them for each viewer).
from django.utils.translation import gettext_noop

MAX_FRAME_BYTES = 64 * 1024
MAX_UNACKED_BYTES = 1024 * 1024
MAX_TERMINAL_SIZE = 1000

# A viewer that has not acknowledged this much output for SLOW_VIEWER_SECONDS is dropped (the page
# reconnects and gets the replay): the engine copies a TTY's output to every attach in turn, so
# one attach left unread would halt the shell's output for every viewer.
SLOW_VIEWER_SECONDS = 5.0

CLOSE_NORMAL = 1000  # the sandbox stopped; its state message says why
CLOSE_NOT_SIGNED_IN = 4401
CLOSE_NOT_YOURS = 4403
CLOSE_NO_SUCH_SANDBOX = 4404
CLOSE_TOO_SLOW = 4408
CLOSE_NOT_RUNNING = 4409
CLOSE_TOO_MANY_CONSOLES = 4429
# A client flooding the console is cut off. Not 1008: daphne (autobahn) may only send 1000 or
# 3000-4999, and raises on anything else instead of closing.
CLOSE_FLOOD = 4400
# The engine ended this viewer's attach while the sandbox still runs: the page reconnects.
CLOSE_ATTACH_LOST = 4502
# The engine does not answer: the page keeps retrying.
CLOSE_ENGINE_UNAVAILABLE = 4503


@dataclasses.dataclass(frozen=True)
class CloseCode:
    code: int
    retry: bool  # the page reconnects by itself (with backoff)
    reason: str  # shown on the page when the server gives no more specific one


CLOSE_CODES = {c.code: c for c in (
    CloseCode(CLOSE_NORMAL, False, gettext_noop("The console has ended.")),
    CloseCode(CLOSE_FLOOD, False, gettext_noop("Too many messages: reload the page to reconnect.")),
    CloseCode(CLOSE_NOT_SIGNED_IN, False, gettext_noop("Sign in to use this console.")),
    CloseCode(CLOSE_NOT_YOURS, False, gettext_noop("This console is not yours.")),
    CloseCode(CLOSE_NO_SUCH_SANDBOX, False, gettext_noop("There is no such sandbox.")),
    CloseCode(CLOSE_TOO_SLOW, True, gettext_noop("This page fell behind the console's output.")),
    CloseCode(CLOSE_NOT_RUNNING, False, gettext_noop("The sandbox is not running.")),
    # Retried: another tab closing (or a reload racing its own old console) frees a place.
    CloseCode(CLOSE_TOO_MANY_CONSOLES, True, gettext_noop("Too many consoles open: close another tab.")),
    CloseCode(CLOSE_ATTACH_LOST, True, gettext_noop("The connection to the sandbox dropped.")),
    CloseCode(CLOSE_ENGINE_UNAVAILABLE, True, gettext_noop("The Docker engine does not answer.")),
)}


class ProtocolError(ValueError):
    """A control message we refuse; its text goes back to the client as an error message."""


@dataclasses.dataclass(frozen=True)
class Resize:
    cols: int
    rows: int


@dataclasses.dataclass(frozen=True)
class Ack:
    bytes: int


def _int_field(message: dict, name: str) -> int:
    value = message.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{name} must be an integer")
    return value


def parse_control(text: str) -> Resize | Ack:
    if len(text.encode()) > MAX_FRAME_BYTES:
        raise ProtocolError(f"control message larger than {MAX_FRAME_BYTES} bytes")
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError("control messages must be JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("control messages must be JSON objects")
    kind = message.get("type")
    if kind == "resize":
        cols, rows = _int_field(message, "cols"), _int_field(message, "rows")
        if not (1 <= cols <= MAX_TERMINAL_SIZE and 1 <= rows <= MAX_TERMINAL_SIZE):
            raise ProtocolError(f"resize values must be between 1 and {MAX_TERMINAL_SIZE}")
        return Resize(cols, rows)
    if kind == "ack":
        count = _int_field(message, "bytes")
        if count < 0:
            raise ProtocolError("ack bytes must not be negative")
        return Ack(count)
    raise ProtocolError(f"unknown control message type: {str(kind)[:40]!r}")


def state_message(state: str, reason: str = "") -> str:
    payload = {"type": "state", "state": state}
    if reason:
        payload["reason"] = reason
    return json.dumps(payload)


def notice_message(text: str) -> str:
    return json.dumps({"type": "notice", "message": text})


def error_message(text: str) -> str:
    return json.dumps({"type": "error", "message": text})


def close_message(code: int, reason: str = "") -> str:
    """What the server sends right before it closes with ``code`` (one of CLOSE_CODES)."""
    known = CLOSE_CODES[code]
    return json.dumps({"type": "close", "code": code, "retry": known.retry, "reason": reason or known.reason})


class TokenBucket:
    """Inbound message rate limit: ``rate`` per second with bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float, now: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# A read-only viewer's attach starts with the engine's replay, which holds whole lines only: an
# idle shell's prompt (no newline yet) is not in it. A size change makes the shell (and vi, top)
# redraw, and a writable viewer does one for read-only viewers that ask, at most this often.
REDRAW_EVERY_SECONDS = 2.0


class RedrawPacer:
    """When a writable viewer redraws the screen for the read-only viewers that ask: at once,
    unless it redrew less than ``every`` seconds ago; then once when that time is up, for every
    request that came meanwhile. So a burst of viewers opening together costs two redraws, and a
    viewer that attached just after a redraw (which it missed) still gets one."""

    def __init__(self, every: float):
        self.every = every
        self.last: float | None = None
        self.planned = False

    def ask(self, now: float) -> float | None:
        """Seconds to wait before the redraw that answers a request made at ``now``; None when
        a redraw already planned (and not yet begun) answers it as well."""
        if self.planned:
            return None
        self.planned = True
        return 0.0 if self.last is None else max(0.0, self.last + self.every - now)

    def redrawing(self, now: float) -> None:
        """A redraw begins now: a request from here on needs another one (its viewer may have
        attached after this redraw's output went by)."""
        self.last = now
        self.planned = False
