"""Helpers of the browser tests: Debian's Chromium and how it is started, the live site's own
environment, and the few steps many tests share (start as a guest, wait for a condition)."""

from __future__ import annotations

import os

from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
UNTRANSLATED_LESSON = "english-only"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


def live_site_env(tmp_path_factory) -> dict:
    """The environment of the live site's own commands (``manage.py grant_instructor`` and the
    like): its database and data folder, in the session temp folder named site-data*."""
    found = sorted(tmp_path_factory.getbasetemp().glob("site-data*/db.sqlite3"))
    assert found, "the live site's database was not found"
    db = found[-1]
    env = {**os.environ, "TUTORIAL_DATA_DIR": str(db.parent), "TUTORIAL_SQLITE_PATH": str(db),
           "DJANGO_SETTINGS_MODULE": "tutorial.settings"}
    env.pop("DATABASE_URL", None)
    return env


def start_as_guest(page, live_site: str, lesson: str, *, timeout_ms: int = 15000) -> None:
    """A visitor on the lesson's page continues as a guest, presses Start and waits for the prompt."""
    page.goto(f"{live_site}/lessons/{lesson}/")
    page.get_by_role("button", name="Continue as guest").click()
    # Start through htmx (a click before the scripts ran would post the plain form and reload).
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Start sandbox").click()
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=timeout_ms)
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("$", timeout=10000)


def wait_until(page, expression: str, timeout_ms: int = 10000) -> None:
    # Polled with evaluate: wait_for_function compiles strings, which the site's CSP forbids.
    for _ in range(timeout_ms // 100):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    focused = page.evaluate("document.activeElement ? document.activeElement.outerHTML.slice(0, 120) : null")
    raise AssertionError(f"never true: {expression} (focus on {focused})")


def in_viewport(page, selector: str) -> bool:
    """The element's centre is inside the window and the element itself is what is there."""
    return page.evaluate("""(sel) => { const el = document.querySelector(sel); const r = el.getBoundingClientRect();
      const x = r.left + r.width / 2, y = r.top + r.height / 2;
      if (x < 0 || y < 0 || x > innerWidth || y > innerHeight) return false;
      const hit = document.elementFromPoint(x, y); return !!hit && (hit === el || el.contains(hit)); }""", selector)
