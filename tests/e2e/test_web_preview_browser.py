"""A learner opens their own container's web page from the lesson page: Web preview lists the port,
the link opens a new tab with the page, and that page runs in an opaque origin (it cannot read the
site's cookies or pages)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import start_as_guest

pytestmark = [pytest.mark.browser, pytest.mark.engine]

LESSON = "containers"


def test_web_preview_opens_the_learners_page_in_an_opaque_origin(live_site, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        start_as_guest(page, live_site, LESSON, timeout_ms=20000)
        page.locator("#terminal").click()
        page.keyboard.type("docker run -d --name site -p 127.0.0.1::8080 127.0.0.1:5000/library/web && echo pub''lished\n")
        expect(page.locator("#terminal .xterm-rows")).to_contain_text("published", timeout=30000)

        page.get_by_role("button", name="Web preview").click()
        link = page.locator("#sandbox-ports a[target=_blank]")
        expect(link).to_contain_text("site, port 8080")
        with context.expect_page() as opened:
            link.click()
        tab = opened.value
        tab.wait_for_load_state("load")
        expect(tab.locator("body")).to_contain_text("Hello from the web lesson image")
        assert tab.evaluate("self.origin") == "null"
        assert tab.evaluate("(() => { try { return document.cookie; } catch (e) { return 'refused'; } })()") == "refused"
    finally:
        context.close()
