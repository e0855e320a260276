"""A read-only viewer (an instructor watching, a watch-grid tile) sees the learner's prompt as it
opens, on the real engine, without any key pressed by the learner.

The engine's replay holds whole lines only, so the prompt of an idle shell ("learner@...$ ", no
newline yet) is in no replay: only a redraw of the screen brings it. A read-only viewer may not
change the learner's terminal size, so the redraw keeps the learner's size."""

from __future__ import annotations

import json
import re

import pytest

from tests.websockets import connect_console, next_text, read_until

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

# The shell's prompt on the last line of what was seen (escape sequences may follow it: BusyBox's
# shell asks the terminal where the cursor is).
PROMPT = rb"\$ [^\n]*\Z"


async def open_watcher(console, sandbox, user):
    """A read-only viewer as the watch grid opens one: no input, and (the grid) no resize."""
    watcher = await console(sandbox.id, user)
    connected, _ = await watcher.connect()
    assert connected
    assert await next_text(watcher) == {"type": "state", "state": "running"}
    return watcher


async def learner_at_prompt(console, sandbox, owner, word: str):
    """The learner's console (100 columns, 30 rows), left at the prompt after ``echo word-6``."""
    learner = await connect_console(console, sandbox, owner)
    await learner.send_to(bytes_data=f"echo {word}-$((2*3))\r".encode())
    await read_until(learner, word.encode() + rb"-6\r\n[^\n]*" + PROMPT)
    return learner


async def learners_size(learner) -> bytes:
    await learner.send_to(bytes_data=b"stty size; echo size-$((2+2))\r")
    seen = await read_until(learner, rb"size-4\r\n")
    return re.findall(rb"(\d+ \d+)\r\n", seen)[-1]


async def test_a_watcher_sees_an_idle_learners_prompt_and_the_learners_size_is_kept(
    console, classroom, learners_sandbox, owner, instructor
):
    learner = await learner_at_prompt(console, learners_sandbox, owner, "before")
    # The learner sits at the prompt; nothing is typed from here until the watcher has seen it.
    watcher = await open_watcher(console, learners_sandbox, instructor)
    assert re.search(rb"before-6", await read_until(watcher, PROMPT, timeout=5))
    await watcher.disconnect()
    assert await learners_size(learner) == b"30 100"
    await learner.disconnect()


async def test_many_watchers_opening_together_each_see_the_prompt(
    console, classroom, learners_sandbox, owner, instructor
):
    learner = await learner_at_prompt(console, learners_sandbox, owner, "idle")
    watchers = [await open_watcher(console, learners_sandbox, instructor) for _ in range(3)]
    for watcher in watchers:
        await read_until(watcher, PROMPT, timeout=5)
    for watcher in watchers:
        await watcher.disconnect()
    assert await learners_size(learner) == b"30 100"
    await learner.disconnect()


async def test_a_watcher_sees_the_prompt_of_a_learner_who_closed_the_tab(
    console, classroom, learners_sandbox, owner, instructor
):
    learner = await learner_at_prompt(console, learners_sandbox, owner, "gone")
    await learner.disconnect()
    watcher = await open_watcher(console, learners_sandbox, instructor)
    await watcher.send_to(text_data=json.dumps({"type": "resize", "cols": 80, "rows": 14}))
    assert re.search(rb"gone-6", await read_until(watcher, PROMPT, timeout=5))
    await watcher.disconnect()
