"""A learner's clocks and shell in the browser: the pane shows both the session's end and the idle
stop, Extend visibly moves the session's end and says so, and `exit` at the prompt gives a new shell
in the same sandbox instead of ending it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import start_as_guest

pytestmark = [pytest.mark.browser, pytest.mark.engine]

LESSON = "what-is-a-container"


def _minutes(text: str) -> float:
    found = re.search(r"(\d+):(\d\d)", text)
    assert found, f"no m:ss in {text!r}"
    return int(found.group(1)) + int(found.group(2)) / 60


def test_extend_moves_the_session_clock_and_exit_gives_a_new_shell(live_site, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        start_as_guest(page, live_site, LESSON)

        session = page.locator("#sandbox-timer [data-session-left-label]")
        idle = page.locator("#sandbox-timer [data-idle-left-label]")
        expect(session).to_contain_text(re.compile(r"\d+:\d\d left"))
        expect(idle).to_contain_text(re.compile(r"idle stop in \d+:\d\d"))
        before = _minutes(session.inner_text())

        page.get_by_role("button", name="Extend").click()
        expect(page.locator("#sandbox-timer [role=status]")).to_contain_text("Extended by 30 minutes.")
        expect(session).to_contain_text(re.compile(r"\d+:\d\d left"))
        assert _minutes(session.inner_text()) - before == pytest.approx(30, abs=0.2)

        page.locator("#terminal").click()
        page.keyboard.type("exit\n")
        expect(page.locator("#terminal .xterm-rows")).to_contain_text("a new shell", timeout=10000)
        page.keyboard.type("echo alive-$((6*7))\n")
        expect(page.locator("#terminal .xterm-rows")).to_contain_text("alive-42", timeout=10000)
        expect(page.locator("[data-console-status]")).to_have_text("Connected")

        # Ending the loop that restarts the shell ends the sandbox: the pane offers to start again.
        page.keyboard.type("kill -KILL $PPID\n")
        expect(page.get_by_role("button", name="Start sandbox again")).to_be_visible(timeout=20000)
    finally:
        context.close()
