"""Three learners type at once while their instructor watches them all in the watch grid: each
tile shows its learner's prompt before anyone types, and each learner's output appears in that
learner's tile and in no other. A tile scrolled off screen drops its console; a learner can open
neither the grid nor another learner's console."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import live_site_env, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery 9"
LEARNERS = ["Ana Grid", "Ben Grid", "Cai Grid"]

# Runs in a page: open a websocket and resolve with the close code the server sends.
_CLOSE_CODE = """(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onclose = (ev) => resolve(ev.code);
  setTimeout(() => resolve(-1), 10000);
})"""


def _instructor_with_class(page, live_site, tmp_path_factory) -> str:
    page.goto(f"{live_site}/accounts/signup/")
    page.fill("input[name=username]", "grid-teacher")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.locator("form button").last.click()
    page.fill("input[name=username]", "grid-teacher")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    subprocess.run([sys.executable, "manage.py", "grant_instructor", "grid-teacher"], cwd=ROOT,
                   env=live_site_env(tmp_path_factory), check=True, capture_output=True)
    page.goto(f"{live_site}/classrooms/")
    page.fill("input[name=name]", "Grid class")
    page.locator("input[name=lessons][value=what-is-a-container]").check()
    page.get_by_role("button", name="Create classroom").click()
    expect(page.locator("[data-live-status]")).to_have_text("live", timeout=10000)
    return page.locator("[data-join-url]").get_attribute("href")


def _learner_starts(page, join_url: str, name: str) -> None:
    page.goto(join_url)
    page.fill("input[name=display_name]", name)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("heading", name="Grid class", exact=True)).to_be_visible()
    page.get_by_role("link", name="What a container really is").first.click()
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Start sandbox").click()
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=30000)


def test_three_learners_each_appear_in_their_own_tile(live_site, browser, tmp_path_factory):
    teacher_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    learner_ctxs = [browser.new_context(viewport={"width": 1280, "height": 800}) for _ in LEARNERS]
    try:
        teacher = teacher_ctx.new_page()
        join_url = _instructor_with_class(teacher, live_site, tmp_path_factory)
        dashboard = teacher.url
        learners = [ctx.new_page() for ctx in learner_ctxs]
        for page, name in zip(learners, LEARNERS):
            _learner_starts(page, join_url, name)

        teacher.goto(dashboard)
        teacher.get_by_role("link", name="Watch several learners at once").click()
        tiles = teacher.locator("[data-watch-tile]")
        expect(tiles).to_have_count(3)
        tile = {name: tiles.filter(has=teacher.get_by_role("heading", name=name)) for name in LEARNERS}
        for name in LEARNERS:
            expect(tile[name].locator("[data-tile-status]")).to_have_text("Connected", timeout=20000)
            # The learner sits idle at the prompt, which no replay holds (it has no newline yet):
            # the tile shows it at once all the same, redrawn by the learner's own tab.
            expect(tile[name].locator(".xterm-rows")).to_contain_text("learner@sandbox", timeout=5000)
            # Labelled: the tile's terminal is named after its learner; its link opens the full view.
            expect(tile[name].get_by_role("group", name=f"Terminal of {name}, read-only")).to_be_visible()
            expect(tile[name].get_by_role("link", name=f"Open the terminal of {name}")).to_be_visible()

        markers = {name: f"grid-mark-{i}{i}{i}" for i, name in enumerate(LEARNERS, start=1)}
        for i, (page, name) in enumerate(zip(learners, LEARNERS), start=1):
            page.locator("#terminal").click()
            # Typed as arithmetic, so the marker appears only in the shell's output, not the echo.
            page.keyboard.type(f"echo grid-mark-$(({i}*111))")
            page.keyboard.press("Enter")
        for name, marker in markers.items():
            expect(tile[name].locator(".xterm-rows")).to_contain_text(marker, timeout=15000)
        for name in LEARNERS:
            shown = tile[name].locator(".xterm-rows").inner_text()
            assert [m for other, m in markers.items() if other != name and m in shown] == [], f"{name}'s tile: {shown!r}"

        # Read-only: keys pressed in a tile reach nobody's shell.
        tile[LEARNERS[0]].locator(".tile-terminal").click()
        teacher.keyboard.type("echo tile-$((9*9))")
        teacher.keyboard.press("Enter")
        learners[0].keyboard.type("echo after-$((2*3))")
        learners[0].keyboard.press("Enter")
        expect(learners[0].locator("#terminal .xterm-rows")).to_contain_text("after-6", timeout=10000)
        assert "tile-81" not in learners[0].locator("#terminal .xterm-rows").inner_text()

        # Keyboard: Tab reaches each tile's link, in the order of the tiles.
        links = teacher.evaluate("""() => [...document.querySelectorAll('[data-tile-open]')].map(a => a.textContent)""")
        teacher.locator("h1").click()
        seen = []
        for _ in range(12):
            teacher.keyboard.press("Tab")
            text = teacher.evaluate("document.activeElement.matches('[data-tile-open]') ? document.activeElement.textContent : null")
            if text:
                seen.append(text)
            if len(seen) == len(links):
                break
        assert seen == links

        # Bounded cost: in a short window, the tiles scrolled away close their consoles.
        assert teacher.evaluate("window.watchGrid.open()") == 3
        teacher.set_viewport_size({"width": 600, "height": 300})
        teacher.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        wait_until(teacher, "window.watchGrid.open() === 1")
        expect(tile[LEARNERS[0]].locator("[data-tile-status]")).to_have_text("Not connected (off screen)")
        tile[LEARNERS[0]].locator(".tile-terminal").scroll_into_view_if_needed()
        expect(tile[LEARNERS[0]].locator("[data-tile-status]")).to_have_text("Connected", timeout=20000)

        # A learner: no grid, and another learner's console closes with "not yours".
        grid_url = teacher.url.split("?")[0]
        assert learners[1].goto(grid_url).status == 404
        other = tile[LEARNERS[0]].locator("[data-tile-console-url]").get_attribute("data-tile-console-url")
        code = learners[1].evaluate(_CLOSE_CODE, live_site.replace("http", "ws", 1) + other)
        assert code == 4403
    finally:
        teacher_ctx.close()
        for ctx in learner_ctxs:
            ctx.close()
