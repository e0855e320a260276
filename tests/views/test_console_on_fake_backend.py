"""The console websocket through the real ASGI app (origin check, session, consumer) on the
in-memory backend: who may type, and that typing costs no database work. The same protocol
against the real engine is tests/integration/test_console.py."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from django.db.backends import utils as db_utils

from sandbox import consumers
from tests.websockets import connect_console, next_text, read_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def running(fake_owners_sandbox):
    return fake_owners_sandbox


@pytest.fixture
def queries(monkeypatch):
    """Every SQL statement any thread runs, while the list is being filled."""
    seen: list[str] = []
    for name in ("execute", "executemany"):
        original = getattr(db_utils.CursorWrapper, name)

        def counting(self, sql, *args, _original=original, **kwargs):
            seen.append(sql)
            return _original(self, sql, *args, **kwargs)

        monkeypatch.setattr(db_utils.CursorWrapper, name, counting)
    return seen


async def _connect(console, sandbox, user):
    ws = await console(sandbox.id, user)
    connected, _ = await ws.connect()
    assert connected
    return ws


async def test_typing_echoes_and_runs_no_database_query_per_keystroke(console, running, owner, queries,
                                                                      monkeypatch):
    monkeypatch.setattr(consumers, "ACTIVITY_FLUSH_SECONDS", 3600.0)  # the batched activity write
    ws = await _connect(console, running, owner)
    await ws.send_to(bytes_data=b"warm-up ")
    await read_until(ws, re.escape(b"warm-up "))
    await asyncio.sleep(0.2)
    queries.clear()
    typed = b"".join(b"%d " % n for n in range(100))
    for key in typed:
        await ws.send_to(bytes_data=bytes([key]))
    await read_until(ws, re.escape(typed[-10:]))
    assert queries == []
    await ws.disconnect()


async def test_activity_is_recorded_once_when_the_viewer_leaves(console, running, owner, queries, monkeypatch):
    monkeypatch.setattr(consumers, "ACTIVITY_FLUSH_SECONDS", 3600.0)
    ws = await _connect(console, running, owner)
    await ws.send_to(bytes_data=b"ls\r")
    await read_until(ws, re.escape(b"ls\r"))
    queries.clear()
    await ws.disconnect(timeout=10)  # returns once the consumer has finished, its last write done
    assert sum("last_activity_at" in sql for sql in queries) == 1


async def test_a_classmate_cannot_attach(console, running, classmate):
    ws = await console(running.id, classmate)
    connected, code = await ws.connect()
    if connected:  # accepted to say why, then closed
        while (message := await ws.receive_output(5))["type"] != "websocket.close":
            pass
        code = message.get("code")
    assert code not in (None, 1000)


async def test_a_new_console_takes_its_slot_and_joins_its_group_once(console, running, owner, monkeypatch):
    """Opening a console costs one slot call and one join per group (Redis calls under `make run`):
    the heartbeat that renews them comes a heartbeat later, not again as the console opens."""
    from channels.layers import InMemoryChannelLayer

    from sandbox.console_slots import ConsoleSlot

    calls: list[str] = []
    for cls, name in ((ConsoleSlot, "acquire"), (ConsoleSlot, "refresh"), (InMemoryChannelLayer, "group_add")):
        original = getattr(cls, name)

        async def counting(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return await _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, counting)
    ws = await _connect(console, running, owner)
    await ws.send_to(bytes_data=b"ls\r")
    await read_until(ws, re.escape(b"ls\r"))
    await asyncio.sleep(0.3)
    assert sorted(calls) == ["acquire", "group_add"]
    await ws.disconnect()


# --- A read-only viewer sees the prompt at once ----------------------------------------------------
# The fake's replay holds whole lines only and a size change redraws the line being typed, as the
# engine and a shell do: an idle shell's prompt reaches a new viewer only through a redraw.

PROMPT = b"learner$ "


async def _watch(console, sandbox, instructor, size=None):
    """A read-only viewer as the watch grid opens one (it may say its own size)."""
    ws = await _connect(console, sandbox, instructor)
    assert await next_text(ws) == {"type": "state", "state": "running"}
    if size is not None:
        await ws.send_to(text_data=json.dumps({"type": "resize", "cols": size[0], "rows": size[1]}))
    return ws


@pytest.fixture
def watched(classroom, running):
    return running


async def _learner_at_prompt(console, sandbox, owner):
    learner = await connect_console(console, sandbox, owner)  # 100 x 30
    await learner.send_to(bytes_data=PROMPT)  # what the shell shows while it waits (the fake echoes it)
    await read_until(learner, re.escape(PROMPT))
    return learner


async def test_a_watcher_gets_the_idle_learners_prompt_redrawn_at_the_learners_size(
    console, watched, owner, instructor, fake_backend
):
    learner = await _learner_at_prompt(console, watched, owner)
    fake = fake_backend.sandboxes[str(watched.id)]
    sizes_before = list(fake.sizes)
    watcher = await _watch(console, watched, instructor, size=(80, 14))
    await read_until(watcher, re.escape(PROMPT))
    # The learner's own size, for a moment one row less: never the watcher's.
    assert fake.sizes[len(sizes_before):] == [(100, 29), (100, 30)]
    assert fake.size == (100, 30)
    await watcher.disconnect()
    await learner.disconnect()


async def test_watchers_opening_together_cost_at_most_two_redraws_and_each_gets_the_prompt(
    console, watched, owner, instructor, fake_backend
):
    learner = await _learner_at_prompt(console, watched, owner)
    fake = fake_backend.sandboxes[str(watched.id)]
    sizes_before = len(fake.sizes)
    watchers = await asyncio.gather(*(_watch(console, watched, instructor) for _ in range(6)))
    for watcher in watchers:
        await read_until(watcher, re.escape(PROMPT))
    # The learner's first resize has just redrawn: one more when the pause is up serves them all.
    assert 1 <= len(fake.sizes[sizes_before:]) // 2 <= 2
    assert fake.size == (100, 30)
    for watcher in watchers:
        await watcher.disconnect()
    await learner.disconnect()


async def test_with_nobody_typing_a_watcher_redraws_at_its_own_size(console, watched, owner, instructor, fake_backend):
    learner = await _learner_at_prompt(console, watched, owner)
    await learner.disconnect()  # the learner closed the tab
    watcher = await _watch(console, watched, instructor, size=(80, 14))
    await read_until(watcher, re.escape(PROMPT))
    assert fake_backend.sandboxes[str(watched.id)].size == (80, 14)
    await watcher.disconnect()


async def test_a_watcher_never_resizes_while_the_learner_types(console, watched, owner, instructor, fake_backend):
    learner = await _learner_at_prompt(console, watched, owner)
    watcher = await _watch(console, watched, instructor, size=(80, 14))
    await read_until(watcher, re.escape(PROMPT))
    await watcher.send_to(text_data=json.dumps({"type": "resize", "cols": 50, "rows": 10}))
    await learner.send_to(bytes_data=b"echo done\r")
    await read_until(watcher, re.escape(b"echo done"))
    assert (80, 14) not in fake_backend.sandboxes[str(watched.id)].sizes
    assert (50, 10) not in fake_backend.sandboxes[str(watched.id)].sizes
    await watcher.disconnect()
    await learner.disconnect()


async def test_an_answer_that_comes_after_the_watcher_gave_up_gives_the_learner_their_size_back(
    console, watched, owner, instructor, fake_backend, monkeypatch
):
    monkeypatch.setattr(consumers, "REDRAW_ANSWER_SECONDS", 0)  # a process too busy to answer in time
    learner = await _learner_at_prompt(console, watched, owner)
    watcher = await _watch(console, watched, instructor, size=(80, 14))
    # Four size changes, each a redraw: two at the watcher's size, then two at the learner's.
    await read_until(watcher, b"(\r" + re.escape(PROMPT) + b".*){4}")
    assert fake_backend.sandboxes[str(watched.id)].sizes[-4:] == [(80, 13), (80, 14), (100, 29), (100, 30)]
    await watcher.disconnect()
    await learner.disconnect()
