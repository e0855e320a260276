"""A keyboard-only learner on a lesson page with a running sandbox: the page does not throw them
into the terminal, a skip link takes them there, Escape then Tab takes them out, Check is reachable
by Tab and leaves the focus on its spoken verdict, and the task bar with Check stays in view
whichever way the instructions are scrolled. Underscores show in the terminal, in both themes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import in_viewport, start_as_guest, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
LESSON = "what-is-a-container"

FOCUS_IN_TERMINAL = "!!document.activeElement && !!document.activeElement.closest('#terminal')"
FOCUSED = """(() => { const a = document.activeElement;
  return a ? (a.getAttribute('data-check') !== null ? 'check' : (a.textContent || '').trim().slice(0, 60)) : ''; })()"""

# Pixels darker than the light background in a PNG (the screenshot of one element), counted by the browser's own decoder.
INK = """async (b64) => {
  const img = new Image(); img.src = 'data:image/png;base64,' + b64; await img.decode();
  const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] < 600) n++;
  return n; }"""


def _start_sandbox(page, live_site):
    start_as_guest(page, live_site, LESSON)


def _press_tab_until(page, wanted, limit: int = 80) -> bool:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED) == wanted:
            return True
    return False


def test_keyboard_walk_through_a_step(live_site, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    page = context.new_page()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        _start_sandbox(page, live_site)
        # Start was the learner asking: the terminal has the keyboard once it attached.
        wait_until(page, FOCUS_IN_TERMINAL)

        # A page load never takes the focus into the terminal.
        page.reload()
        expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=15000)
        expect(page.locator("#terminal .xterm-rows")).to_contain_text("$", timeout=10000)
        page.wait_for_timeout(500)
        assert not page.evaluate(FOCUS_IN_TERMINAL)
        status = page.locator("[data-console-status]")
        expect(status).to_have_attribute("aria-live", "polite")

        # The first Tab reaches the skip links; "Skip to terminal" puts the keyboard in the terminal.
        page.keyboard.press("Tab")
        assert page.evaluate(FOCUSED) == "Skip to instructions"
        expect(page.get_by_role("link", name="Skip to instructions")).to_be_visible()
        page.keyboard.press("Tab")
        assert page.evaluate(FOCUSED) == "Skip to terminal"
        page.keyboard.press("Enter")
        assert page.evaluate(FOCUS_IN_TERMINAL)
        page.keyboard.type("printf '%s\\n' ________________ memory.limit_in_bytes")
        page.keyboard.press("Enter")
        expect(page.locator("#terminal .xterm-rows")).to_contain_text("memory.limit_in_bytes", timeout=10000)

        # In the terminal Tab is the shell's; the way out is shown beside it and works.
        expect(page.locator("[data-terminal-keys]")).to_contain_text("Esc then Tab")
        expect(page.locator("[data-terminal-keys]")).to_contain_text("Ctrl+Shift+C")
        page.keyboard.press("Tab")
        assert page.evaluate(FOCUS_IN_TERMINAL)
        # Escape alone still reaches the program (after a moment, or with the next key).
        page.keyboard.type("cat -v")
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        page.wait_for_timeout(1200)
        page.keyboard.press("Escape")
        page.keyboard.type("x")
        page.keyboard.press("Enter")
        expect(page.locator("#terminal .xterm-rows")).to_contain_text("^[^[x", timeout=10000)
        page.keyboard.press("Control+D")
        page.keyboard.press("Escape")
        page.keyboard.press("Tab")
        assert not page.evaluate(FOCUS_IN_TERMINAL), page.evaluate(FOCUSED)
        # Screen-reader mode: the output is also in xterm's accessible list.
        expect(page.locator("#terminal .xterm-accessibility-tree")).to_contain_text("memory.limit_in_bytes")

        # Underscores are drawn inside their row: a row of them leaves ink where it stands.
        row = page.locator("#terminal .xterm-rows > div").filter(has_text="________________").last
        page.locator("#sandbox-pane").screenshot(path=str(SCREENSHOTS / "lesson-terminal-underscores-light.png"))
        ink = page.evaluate(INK, _b64(row.screenshot()))
        assert ink > 20, f"a row of underscores shows {ink} dark pixels"

        # From the instructions, Tab reaches Check.
        page.keyboard.press("Shift+Tab")  # back out of wherever the last Tab landed
        page.locator("#lesson-text").focus()
        assert _press_tab_until(page, "check"), "Tab never reached Check"

        # Check from the keyboard: the focus lands on the verdict, in a polite live region.
        expect(page.locator("#check-result")).to_have_attribute("aria-live", "polite")
        page.keyboard.press("Enter")
        expect(page.locator("#check-result [data-outcome]")).to_have_attribute("data-outcome", "failed", timeout=20000)
        wait_until(page, "!!document.activeElement && !!document.activeElement.closest('#check-result')")
        assert page.evaluate("document.activeElement.classList.contains('verdict')")
        assert in_viewport(page, "#check-result .verdict")

        # Scrolled to the bottom or the top of the instructions, Check and Next are in view.
        page.locator("#lesson-text").evaluate("el => el.scrollTo(0, el.scrollHeight)")
        assert in_viewport(page, "button[data-check]") and in_viewport(page, "#next-step")
        page.locator("#lesson-text").evaluate("el => el.scrollTo(0, 0)")
        assert in_viewport(page, "button[data-check]") and in_viewport(page, "#next-step")
        assert in_viewport(page, "#check-result .verdict")
        page.screenshot(path=str(SCREENSHOTS / "lesson-page-keyboard-light.png"))

        # A hint replaces its button: the focus goes to the hint it revealed, not to the page.
        page.locator("button[data-hint]").focus()
        page.keyboard.press("Enter")
        wait_until(page, "document.activeElement.classList.contains('hint')")
    finally:
        context.close()


def test_dark_theme_follows_the_system_and_keeps_underscores(live_site, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="dark")
    page = context.new_page()
    try:
        _start_sandbox(page, live_site)
        background = page.evaluate("document.getElementById('terminal').terminal.options.theme.background")
        assert background.lower() == "#0f1720"
        page.locator("#terminal").click()
        page.keyboard.type("printf '%s\\n' memory.limit_in_bytes")
        page.keyboard.press("Enter")
        expect(page.locator("#terminal .xterm-rows")).to_contain_text("memory.limit_in_bytes", timeout=10000)
        page.screenshot(path=str(SCREENSHOTS / "lesson-page-dark.png"))
        # The same page follows a switch to light without a reload.
        page.emulate_media(color_scheme="light")
        wait_until(page, "document.getElementById('terminal').terminal.options.theme.background === '#ffffff'")

        # Stop from the pane: the focus does not fall to the page but to the pane's Start button.
        page.get_by_role("button", name="Stop", exact=True).click()
        expect(page.get_by_role("button", name="Start sandbox again")).to_be_visible(timeout=15000)
        wait_until(page, "(document.activeElement.textContent || '').includes('Start sandbox again')")
    finally:
        context.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_quiz_check_in_the_task_bar_answers_and_focuses_the_verdict(live_site, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(f"{live_site}/lessons/big-picture/")
        page.get_by_role("button", name="Continue as guest").click()
        page.locator('fieldset[data-question="0"] input[type=radio]').nth(1).check()
        check = page.locator(".task-bar button[data-check]")
        expect(check).to_have_text("Check answers")
        check.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#check-result [data-outcome]")).to_have_attribute("data-outcome", "failed", timeout=10000)
        wait_until(page, "document.activeElement.classList.contains('verdict')")
        assert in_viewport(page, "#check-result .verdict")
    finally:
        context.close()


def test_chinese_reader_sees_the_terminal_words_in_chinese(live_site, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        _start_sandbox(page, live_site)
        page.select_option("select[name=language]", "zh-hans")
        expect(page.locator("[data-console-status]")).to_have_text("已连接", timeout=15000)
        expect(page.locator(".code-action").first).to_have_text("▶ 运行")
        expect(page.locator("[data-terminal-keys]")).to_contain_text("先按 Esc 再按 Tab")
        expect(page.locator("#sandbox-timer [data-session-left-label]")).to_contain_text("剩余")
        expect(page.locator("#sandbox-timer [data-idle-left-label]")).to_contain_text("无操作")
        expect(page.get_by_role("link", name="跳到终端")).to_have_count(1)
        page.screenshot(path=str(SCREENSHOTS / "lesson-page-zh-hans.png"))
    finally:
        context.close()
