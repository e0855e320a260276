"""A real site (daphne in a subprocess, its own SQLite and data folder) and Debian's Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daphne_process import running_daphne
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, UNTRANSLATED_LESSON

ROOT = Path(__file__).resolve().parents[2]


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


