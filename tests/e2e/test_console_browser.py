"""A learner in a real browser: start a sandbox, type into xterm.js, reload, see it again."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.engine]


def terminal_text(page) -> str:
    return page.locator("#terminal .xterm-rows").inner_text()


def test_guest_starts_a_sandbox_types_and_sees_output_again_after_reload(live_site, browser_page):
    page = browser_page
    page.goto(f"{live_site}/lessons/what-is-a-container/")
    page.get_by_role("button", name="Continue as guest").click()
    page.get_by_role("button", name="Start sandbox").click()
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=15000)
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("$", timeout=10000)

    page.locator("#terminal").click()
    page.keyboard.type("echo browser-$((6*7))")
    page.keyboard.press("Enter")
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("browser-42", timeout=10000)

    # The terminal fits its pane: xterm reports more than the default 80x24 in a wide window.
    cols = page.evaluate("document.getElementById('terminal').terminal.cols")
    assert cols > 80

    page.reload()
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=15000)
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("browser-42", timeout=10000)

    # exit gives a new shell in the same sandbox; Stop ends it and the page offers to start it again.
    page.locator("#terminal").click()
    page.keyboard.type("exit")
    page.keyboard.press("Enter")
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("a new shell", timeout=10000)
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_role("button", name="Start sandbox again")).to_be_visible(timeout=15000)
    assert re.search(r"stopped", page.locator("#sandbox-pane").inner_text())
