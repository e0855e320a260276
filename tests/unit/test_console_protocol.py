import json

import pytest

from sandbox.protocol import (
    MAX_FRAME_BYTES,
    Ack,
    ProtocolError,
    RedrawPacer,
    Resize,
    TokenBucket,
    error_message,
    parse_control,
    state_message,
)


def test_resize_and_ack_are_parsed():
    assert parse_control('{"type": "resize", "cols": 80, "rows": 24}') == Resize(80, 24)
    assert parse_control('{"type": "ack", "bytes": 4096}') == Ack(4096)


@pytest.mark.parametrize("cols, rows", [(0, 24), (-1, 24), (80, 1001), (1001, 1)])
def test_resize_outside_1_to_1000_is_refused(cols, rows):
    with pytest.raises(ProtocolError, match="between 1 and 1000"):
        parse_control(json.dumps({"type": "resize", "cols": cols, "rows": rows}))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("not json", "JSON"),
        ("[1, 2]", "objects"),
        ('{"type": "resize", "cols": true, "rows": 3}', "integer"),
        ('{"type": "resize", "cols": 8.5, "rows": 3}', "integer"),
        ('{"type": "ack", "bytes": -5}', "negative"),
        ('{"type": "exec", "cmd": "rm -rf /"}', "unknown control message type"),
        ('{"cols": 80}', "unknown control message type"),
    ],
)
def test_malformed_control_messages_are_refused_with_a_reason(text, fragment):
    with pytest.raises(ProtocolError, match=fragment):
        parse_control(text)


def test_oversize_control_message_is_refused_before_parsing():
    with pytest.raises(ProtocolError, match="larger than"):
        parse_control('{"type": "ack", "pad": "' + "x" * MAX_FRAME_BYTES + '"}')


def test_server_messages_are_json():
    assert json.loads(state_message("stopped", "The shell exited.")) == {
        "type": "state", "state": "stopped", "reason": "The shell exited."}
    assert json.loads(error_message("nope")) == {"type": "error", "message": "nope"}


def test_token_bucket_allows_bursts_then_refills_at_its_rate():
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert all(bucket.take(0.0) for _ in range(5))
    assert not bucket.take(0.0)
    assert bucket.take(0.1)  # one token back after 1/rate seconds
    assert not bucket.take(0.1)


def test_redraws_asked_for_together_cost_one_at_once_and_one_when_the_pause_is_up():
    pacer = RedrawPacer(every=2.0)
    assert pacer.ask(10.0) == 0.0  # the first viewer: at once
    pacer.redrawing(10.0)
    # Viewers opening during the pause share one redraw at its end (each may have attached after
    # the first redraw's output went by, so none is simply dropped).
    assert pacer.ask(10.5) == 1.5
    assert [pacer.ask(t) for t in (10.6, 11.0, 11.9)] == [None, None, None]
    pacer.redrawing(12.0)
    assert pacer.ask(12.1) == pytest.approx(1.9)  # asked after that one began: another one
    pacer.redrawing(14.0)
    assert pacer.ask(30.0) == 0.0  # long after: at once again
