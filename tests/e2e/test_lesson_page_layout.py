"""A lesson page with a running terminal on a phone (390×844), at 200 % zoom on a 1280×720 screen
(a 640×360 window at twice the pixel density) and on a laptop (1280×800): the page never scrolls
sideways, the terminal fits the window, Check is in view, on phones (and at 200 % zoom) the
instructions and the terminal are tabs with Check in view under each, between that and two
columns the terminal comes right below the instructions, and the terminal re-fits (the shell sees
the new size) when its tab is shown or the layout changes. Long code blocks scroll inside themselves and the keyboard can scroll them.
Screenshots go to test-results/screenshots/layout-*.png for a person to look at."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import in_viewport, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
LESSON = "what-is-a-container"
# At this width and less the instructions and the terminal are tabs (lessons.css).
PHONE_WIDTH = 700

VIEWPORTS = [
    ("phone-390x844", {"width": 390, "height": 844}, 1),
    ("zoom200-1280x720", {"width": 640, "height": 360}, 2),
    ("laptop-1280x800", {"width": 1280, "height": 800}, 1),
]

PAGE_WIDTH = "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
BOX = """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
  return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width}; }"""
COLS = "document.getElementById('terminal').terminal.cols"
ROWS = "document.getElementById('terminal').terminal.rows"


def _wait_connected(page, prompt: bool = False) -> None:
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=15000)
    if prompt:
        expect(page.locator("#terminal .xterm-rows")).to_contain_text("$", timeout=10000)


def _shell_size(page, marker: str) -> tuple[int, int]:
    """The size the shell's terminal has (rows, columns), as `stty size` prints it."""
    # Unique per call: a page that attaches is sent the screen of the page before it.
    marker = f"{marker}{uuid.uuid4().hex[:6]}"
    page.locator("#terminal").click()
    page.keyboard.type(f"echo {marker}-$(stty size | tr ' ' x)-end")
    page.keyboard.press("Enter")
    rows = page.locator("#terminal .xterm-rows")
    expect(rows).to_contain_text(re.compile(marker + r"-\d+x\d+-end"), timeout=10000)
    found = re.findall(marker + r"-(\d+)x(\d+)-end", rows.inner_text())
    return int(found[-1][0]), int(found[-1][1])


def _assert_fits(page, name: str) -> None:
    width = page.evaluate(PAGE_WIDTH)
    assert width["scroll"] <= width["inner"], f"{name}: the page is {width['scroll']} px wide in a {width['inner']} px window"
    for selector in ("#sandbox-pane", "#terminal", "#terminal .xterm-screen"):
        box = page.evaluate(BOX, selector)
        assert box["left"] >= 0 and box["right"] <= width["inner"] + 0.5, f"{name}: {selector} spans {box} in {width['inner']} px"
    # What the terminal shows is what the shell was told: xterm fitted itself to its box.
    assert page.evaluate(COLS) >= 20


@pytest.fixture(scope="module")
def guest_state(live_site, browser):
    """A guest whose sandbox for the lesson runs, as a saved browser state every viewport reuses."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{live_site}/lessons/{LESSON}/")
        page.get_by_role("button", name="Continue as guest").click()
        page.wait_for_load_state("load")
        page.get_by_role("button", name="Start sandbox").click()
        _wait_connected(page, prompt=True)
        return context.storage_state()
    finally:
        context.close()


@pytest.mark.parametrize(("name", "viewport", "scale"), VIEWPORTS, ids=[v[0] for v in VIEWPORTS])
def test_no_sideways_scroll_and_the_terminal_fits(live_site, browser, guest_state, name, viewport, scale):
    context = browser.new_context(viewport=viewport, device_scale_factor=scale, storage_state=guest_state)
    page = context.new_page()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(f"{live_site}/lessons/{LESSON}/")
        _wait_connected(page)
        _assert_fits(page, name)

        # Check is in view as the page opens (the task bar sticks to the window's bottom).
        assert in_viewport(page, "button[data-check]"), f"{name}: Check is out of view"
        if viewport["width"] <= PHONE_WIDTH:
            # Tabs: the instructions first, the terminal one tap away, Check in view under both.
            assert not page.locator("#terminal").is_visible(), f"{name}: the terminal shows beside the instructions"
            page.screenshot(path=str(SCREENSHOTS / f"layout-{name}-instructions.png"))
            page.get_by_role("tablist", name="Lesson views").get_by_role("tab", name="Terminal").click()
            expect(page.locator("#terminal")).to_be_visible()
            assert not page.locator("#lesson-text .step-body").is_visible(), f"{name}: the instructions show beside the terminal"
            assert in_viewport(page, "button[data-check]"), f"{name}: Check is out of view in the terminal's tab"
            wait_until(page, f"{COLS} < 80")  # re-fitted when its tab was shown
            _assert_fits(page, name)
        elif viewport["width"] < 900:
            text, terminal = page.evaluate(BOX, "#lesson-text"), page.evaluate(BOX, "#terminal")
            assert text["bottom"] <= terminal["top"], f"{name}: the terminal is not below the instructions"
            assert terminal["top"] - text["bottom"] < 120, f"{name}: the terminal is far below the instructions"
        page.screenshot(path=str(SCREENSHOTS / f"layout-{name}.png"))

        # The shell has the size the terminal shows.
        rows, cols = _shell_size(page, "before")
        assert (rows, cols) == (page.evaluate(ROWS), page.evaluate(COLS)), name
        page.screenshot(path=str(SCREENSHOTS / f"layout-{name}-terminal.png"))
        page.locator("#terminal").scroll_into_view_if_needed()
        _assert_fits(page, name)

        # A narrower window: the terminal re-fits and the shell hears of it; nothing scrolls sideways.
        narrower = {"width": max(320, viewport["width"] - 70), "height": viewport["height"]}
        page.set_viewport_size(narrower)
        wait_until(page, f"{COLS} < {cols}")
        _assert_fits(page, name + " narrower")
        _, cols_after = _shell_size(page, "after")
        assert cols_after < cols, f"{name}: the shell still has {cols_after} columns after the window shrank"
        assert cols_after == page.evaluate(COLS)
        page.screenshot(path=str(SCREENSHOTS / f"layout-{name}-narrower.png"))
    finally:
        context.close()


def test_a_banner_above_the_terminal_refits_it(live_site, browser, guest_state):
    """A layout change that is no window resize (a notice above the terminal) re-fits the terminal."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, storage_state=guest_state)
    page = context.new_page()
    try:
        page.goto(f"{live_site}/lessons/{LESSON}/")
        _wait_connected(page)
        rows_before, _ = _shell_size(page, "plain")
        page.evaluate("""() => { const box = document.getElementById('console-notice');
          box.textContent = 'Your instructor sent a message that takes a few lines. '.repeat(12); box.hidden = false; }""")
        wait_until(page, f"{ROWS} < {rows_before}")
        rows_after, _ = _shell_size(page, "banner")
        assert rows_after < rows_before and rows_after == page.evaluate(ROWS)
        # The terminal's last row is still inside its pane, under the banner.
        pane, screen = page.evaluate(BOX, "#sandbox-pane"), page.evaluate(BOX, "#terminal .xterm-screen")
        assert screen["bottom"] <= pane["bottom"] + 0.5, (screen, pane)
    finally:
        context.close()


def test_long_code_blocks_scroll_inside_and_by_keyboard(live_site, browser, guest_state):
    context = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=guest_state)
    page = context.new_page()
    try:
        page.goto(f"{live_site}/lessons/{LESSON}/")
        _wait_connected(page)
        blocks = page.evaluate("""() => [...document.querySelectorAll('.lesson-text pre')].map((pre) => ({
          scrolls: pre.scrollWidth > pre.clientWidth + 1, tabindex: pre.getAttribute('tabindex'),
          label: pre.getAttribute('aria-label') || '', right: pre.getBoundingClientRect().right }))""")
        assert any(b["scrolls"] for b in blocks), "no code block is wider than a phone: the lesson changed?"
        for block in blocks:
            assert block["right"] <= 390, block
            if block["scrolls"]:
                assert block["tabindex"] == "0" and block["label"], block
        # The keyboard reaches a scrolling block and scrolls it.
        wide = page.locator(".lesson-text pre[data-scrolls]").first
        page.locator("#lesson-text").focus()
        for _ in range(40):
            page.keyboard.press("Tab")
            if wide.evaluate("el => el === document.activeElement"):
                break
        assert wide.evaluate("el => el === document.activeElement"), "Tab never reached the wide code block"
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        wait_until(page, "document.activeElement.scrollLeft > 0", 3000)
        # A window wide enough for the block takes it out of the Tab order again.
        page.set_viewport_size({"width": 1280, "height": 800})
        wait_until(page, "document.querySelectorAll('.lesson-text pre[tabindex]').length === "
                          "[...document.querySelectorAll('.lesson-text pre')].filter(p => p.scrollWidth > p.clientWidth + 1).length")
    finally:
        context.close()
