"""Console slots and the close message, without an engine (the clock is passed in)."""

from __future__ import annotations

import json

from sandbox import protocol
from sandbox.console_slots import SLOT_TTL_SECONDS, LocalSlots


def test_a_user_gets_up_to_the_limit_and_a_released_slot_is_free_again():
    slots = LocalSlots()
    assert slots.acquire(1, "tab-a", limit=2, now=0)
    assert slots.acquire(1, "tab-b", limit=2, now=0)
    assert not slots.acquire(1, "tab-c", limit=2, now=0)
    assert slots.acquire(2, "other-user", limit=2, now=0)  # counted per user
    slots.release(1, "tab-a")
    assert slots.acquire(1, "tab-c", limit=2, now=1)


def test_a_slot_nobody_refreshes_lapses_and_a_refreshed_one_does_not():
    slots = LocalSlots()
    slots.acquire(1, "crashed", limit=2, now=0)
    slots.acquire(1, "alive", limit=2, now=0)
    slots.refresh(1, "alive", now=SLOT_TTL_SECONDS - 1)
    assert slots.count(1, now=SLOT_TTL_SECONDS + 1) == 1
    assert slots.acquire(1, "new", limit=2, now=SLOT_TTL_SECONDS + 1)


def test_releasing_twice_or_an_unknown_slot_is_harmless():
    slots = LocalSlots()
    slots.release(1, "never")
    slots.acquire(1, "tab", limit=1, now=0)
    slots.release(1, "tab")
    slots.release(1, "tab")
    assert slots.count(1, now=0) == 0


def test_every_close_code_the_server_sends_says_whether_the_page_reconnects():
    for code, known in protocol.CLOSE_CODES.items():
        message = json.loads(protocol.close_message(code))
        assert message == {"type": "close", "code": code, "retry": known.retry, "reason": known.reason}
    # Final: the page would only be refused again. Retried: the cause goes away by itself.
    final = {code for code, known in protocol.CLOSE_CODES.items() if not known.retry}
    assert final == {protocol.CLOSE_NORMAL, protocol.CLOSE_FLOOD, protocol.CLOSE_NOT_SIGNED_IN,
                     protocol.CLOSE_NOT_YOURS, protocol.CLOSE_NO_SUCH_SANDBOX, protocol.CLOSE_NOT_RUNNING}
    assert json.loads(protocol.close_message(protocol.CLOSE_TOO_SLOW, "behind"))["reason"] == "behind"
