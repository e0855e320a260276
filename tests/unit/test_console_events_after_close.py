"""A channel-layer event (a broadcast, a timer, a state change) that reaches a console after its
browser has gone, but before the consumer's disconnect is dispatched: the server refuses the send
(daphne raises "Attempt to send on a closed protocol"). That is an ordinary page navigation, not a
crash: the handler returns quietly and disconnect() releases the rest. Before, every such race
put an ERROR and a 40-line traceback in the site's log (seen when an instructor left a watch page
as control was given back)."""

from __future__ import annotations

import pytest
from autobahn.exception import Disconnected

from sandbox import consumers


class GoneSandbox:
    id = "00000000-0000-0000-0000-000000000001"


@pytest.fixture
def gone_console():
    consumer = consumers.ConsoleConsumer()
    consumer.sandbox = GoneSandbox()
    consumer.scope = {"user": None}
    sent = []

    async def refused(message):
        sent.append(message)
        raise Disconnected("Attempt to send on a closed protocol")

    consumer.base_send = refused
    consumer.sent = sent
    return consumer


async def test_a_notice_for_a_page_that_has_gone_is_no_error(gone_console):
    await gone_console.sandbox_notice({"type": "sandbox.notice", "message": "Break in five minutes"})
    assert gone_console.sent, "the notice was not even tried"


async def test_a_timer_for_a_page_that_has_gone_is_no_error(gone_console):
    await gone_console.sandbox_timer({"type": "sandbox.timer", "expires_at": None, "extensions_left": 0})


async def test_a_stop_for_a_page_that_has_gone_is_no_error_and_closes_nothing_more(gone_console):
    await gone_console.sandbox_state({"type": "sandbox.state", "state": "stopped", "reason": ""})
    assert gone_console.closing
    # One refused send, then nothing more is tried on the closed socket (no close frame).
    assert len(gone_console.sent) == 1


async def test_an_event_this_version_does_not_know_is_ignored_not_a_crash(gone_console):
    # A newer process of the site (a rolling update) may send an event type this one lacks.
    await gone_console.dispatch({"type": "sandbox.event_from_a_newer_site", "detail": 1})
    assert not gone_console.sent and not gone_console.closing
