"""A learner in a real browser: click a run block (typed into the terminal), Check fails with the
check's feedback, reveal the solution and click it, Check passes without a page reload, Next opens."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.engine]


def test_run_block_then_check_passes_and_next_opens(live_site, browser_page):
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_site}/lessons/what-is-a-container/")
    page.get_by_role("button", name="Continue as guest").click()
    page.get_by_role("button", name="Start sandbox").click()
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=15000)
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("$", timeout=10000)

    # A click on a run block types it into the console.
    page.locator('.step-body pre[data-block="run"]', has_text="ps").first.click()
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("docker-init", timeout=10000)

    # Check is an htmx partial: the page is not reloaded (the marker survives).
    page.evaluate("window.__noReload = true")
    page.locator("button[data-check]").click()
    expect(page.locator("#check-result [data-outcome]")).to_have_attribute("data-outcome", "failed", timeout=20000)
    expect(page.locator("#check-result")).to_contain_text("pid1.txt")
    expect(page.locator("#next-step a[data-next]")).to_have_count(0)

    # Show the solution (recorded) and click its run block: it is typed into the terminal.
    page.locator("button[data-show-solution]").click()
    page.locator('[data-solution] pre[data-block="run"]').click()
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("pid1.txt", timeout=10000)
    # The shell runs typed lines in order: once this marker prints, the solution has run.
    page.evaluate("document.getElementById('terminal').sendInput('echo solution-done-$((40+2))\\n')")
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("solution-done-42", timeout=10000)

    page.locator("button[data-check]").click()
    expect(page.locator("#check-result [data-outcome]")).to_have_attribute("data-outcome", "passed", timeout=20000)
    expect(page.locator("#check-result")).to_contain_text("Right: PID 1 here is")
    assert page.evaluate("window.__noReload") is True

    page.locator("#next-step a[data-next]").click()
    expect(page.locator("h1.step-title")).to_contain_text("A hostname of its own")
    expect(page.locator('.steps-nav li.passed[data-step="processes-and-pid-1"]')).to_have_count(1)
