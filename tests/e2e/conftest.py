"""A real site (daphne in a subprocess, its own SQLite and data folder) and Debian's Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.daphne_process import running_daphne

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="session")
def live_site(tmp_path_factory, docker_client, base_image):
    """Base URL of the real ASGI site served by daphne, migrated and ready."""
    data_dir = tmp_path_factory.mktemp("site-data")
    # Every curriculum lesson is translated: an English-only copy of one, in a folder of extra
    # lessons as an instructor's own would be, is the untranslated lesson the pages must label.
    extra = data_dir / "extra-lessons"
    shutil.copytree(ROOT / "lessons" / "content" / "containers", extra / UNTRANSLATED_LESSON,
                    ignore=shutil.ignore_patterns("*.zh-hans.md"))
    front = extra / UNTRANSLATED_LESSON / "lesson.md"
    front.write_text(re.sub(r"^order: .*$", "order: 9999", front.read_text(), count=1, flags=re.M))
    env = {
        **os.environ,
        "TUTORIAL_DATA_DIR": str(data_dir),
        "TUTORIAL_SQLITE_PATH": str(data_dir / "db.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "tutorial.settings",
        "PYTHONPATH": str(ROOT),
        # Every browser test is a visitor from 127.0.0.1 on this one site: the per-address abuse
        # limits (10 guests an hour, 6 sandboxes at once) would refuse the later tests' guests.
        # Those limits have tests of their own (tests/views/test_abuse_limits.py).
        "TUTORIAL_RATE_GUESTS": "1000/h",
        "TUTORIAL_RATE_SIGNUPS": "1000/h",
        "TUTORIAL_RATE_JOINS": "1000/h",
        "TUTORIAL_SANDBOXES_PER_ADDRESS": "0",
        "TUTORIAL_LESSON_DIRS": str(extra),
    }
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    with running_daphne(env, data_dir / "daphne.log") as server:
        yield server.url
    # Sandboxes the browser started belong to this site's database; remove them from the engine.
    subprocess.run(
        [sys.executable, "-c", _CLEANUP], cwd=ROOT, env=env, check=False, timeout=60,
    )


# Stop every sandbox the live site's database knows, through the real services.
_CLEANUP = """
import asyncio, django
django.setup()
from sandbox.models import Sandbox
from sandbox import services
async def main():
    async for sandbox in Sandbox.objects.select_related('owner'):
        await services.stop_sandbox(sandbox)
asyncio.run(main())
"""


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: Playwright's sync API keeps its event loop marked as running on
    # this thread while open, and later tests that call asyncio.run() would then fail.
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


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
