"""The console page when its websocket drops, in a real browser against the real site: it says it
is reconnecting, keeps what the learner types meanwhile and sends it once back, and when the
server keeps refusing it backs off instead of looping (and never reloads the page)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.engine]

CONSOLE = re.compile(r"/ws/sandboxes/[^/]+/console/")


def test_a_dropped_console_reconnects_with_backoff_and_keeps_what_was_typed(live_site, browser_page):
    page = browser_page
    routes = []
    refusing = {"on": False}
    loads = []
    page.on("load", lambda _: loads.append(1))

    def through(route):
        routes.append(route)
        if refusing["on"]:
            route.close(code=1011)  # what daphne sent on every Redis timeout
            return
        route.connect_to_server()

    page.route_web_socket(CONSOLE, through)
    page.goto(f"{live_site}/lessons/what-is-a-container/")
    page.get_by_role("button", name="Continue as guest").click()
    page.get_by_role("button", name="Start sandbox").click()
    status = page.locator("[data-console-status]")
    rows = page.locator("#terminal .xterm-rows")
    expect(status).to_have_text("Connected", timeout=15000)
    expect(rows).to_contain_text("$", timeout=10000)
    loads_before = len(loads)

    # The connection drops; the learner keeps typing.
    refusing["on"] = True
    routes[-1].close(code=1011)
    expect(status).to_contain_text("Reconnecting in", timeout=5000)
    page.locator("#terminal").click()
    page.keyboard.type("echo kept-$((20+22))")
    page.keyboard.press("Enter")
    expect(status).to_contain_text("typed keys wait", timeout=5000)

    # The server refuses for a while: attempts back off (a tight loop made hundreds a second).
    refused_from = len(routes)
    time.sleep(12)
    attempts = len(routes) - refused_from
    assert attempts <= 8, attempts

    # Back: the typed command runs once, in the same shell, and the page was never reloaded.
    refusing["on"] = False
    expect(status).to_have_text("Connected", timeout=40000)
    expect(rows).to_contain_text("kept-42", timeout=10000)
    assert len(loads) == loads_before
