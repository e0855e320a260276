"""The editor tab in Chromium on a real sandbox: open a file of the home, type, save, and the
terminal's `cat` shows it; a change made in the shell meanwhile is a conflict the learner resolves
(reload or overwrite). On a phone the instructions, the terminal and the editor are tabs: a tapped
Run shows the terminal, which fits its tab, and Check stays in view. Screenshots go to
test-results/screenshots/editor-*.png for a person to look at."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import in_viewport, start_as_guest, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.engine]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
LESSON = "what-is-a-container"
EDITOR_TEXT = "document.getElementById('editor-panel').editor.getValue()"


def _type_in_terminal(page, line: str) -> None:
    page.locator("#terminal").click()
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def _open_in_editor(page, path: str) -> None:
    page.get_by_label("File in your home folder").fill(path)
    page.get_by_role("button", name="Open", exact=True).click()


def test_open_type_save_and_the_terminal_sees_it_then_a_conflict(live_site, browser_page):
    page = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    start_as_guest(page, live_site, LESSON)
    marker = uuid.uuid4().hex[:8]
    _type_in_terminal(page, f"mkdir -p app && echo 'first {marker}' > app/notes.txt")

    # The pane's tabs by keyboard: one Tab stop, the arrows move between them and show each view.
    page.get_by_role("tab", name="Terminal").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Editor")).to_be_focused()
    expect(page.get_by_role("tab", name="Editor")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#terminal-panel")).to_be_hidden()
    expect(page.locator("#editor-panel")).to_be_visible()
    # The file list offers what the shell made.
    expect(page.locator("#editor-files option[value='app/notes.txt']")).to_have_count(1, timeout=10000)
    _open_in_editor(page, "app/notes.txt")
    expect(page.locator("[data-editor-status]")).to_have_text("Opened app/notes.txt.", timeout=10000)
    wait_until(page, f"{EDITOR_TEXT} === 'first {marker}\\n'")
    # The editor has the focus once a file is open: type at the end and save with Ctrl+S.
    page.keyboard.press("Control+End")
    page.keyboard.type(f"second {marker}")
    # Tab indents inside the editor; Escape then Tab leaves it for the next control (Save).
    page.keyboard.press("Tab")
    wait_until(page, f"/second {marker} +$/.test({EDITOR_TEXT})")
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    wait_until(page, "document.activeElement.matches('[data-editor-save]')")
    page.keyboard.press("Shift+Tab")  # back into the text, where Ctrl+S saves
    page.keyboard.press("Control+s")
    expect(page.locator("[data-editor-status]")).to_have_text("Saved app/notes.txt.", timeout=10000)
    page.screenshot(path=str(SCREENSHOTS / "editor-saved.png"))

    page.get_by_role("tab", name="Terminal").click()
    _type_in_terminal(page, "cat app/notes.txt; echo end-of-cat")
    expect(page.locator("#terminal .xterm-rows")).to_contain_text(f"first {marker}second {marker}", timeout=10000)

    # The shell changes the file while the editor holds the old copy: saving says so, loses nothing.
    _type_in_terminal(page, f"echo 'from the shell {marker}' >> app/notes.txt")
    expect(page.locator("#terminal .xterm-rows")).to_contain_text(f"from the shell {marker}' >>", timeout=10000)
    page.get_by_role("tab", name="Editor").click()
    page.locator("#editor-panel .CodeMirror").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" mine")
    page.get_by_role("button", name="Save").click()
    conflict = page.locator("[data-editor-conflict]")
    expect(conflict).to_be_visible(timeout=10000)
    expect(conflict).to_contain_text("changed in the sandbox since you opened it")
    page.screenshot(path=str(SCREENSHOTS / "editor-conflict.png"))
    page.get_by_role("button", name="Reload the sandbox's version").click()
    wait_until(page, f"{EDITOR_TEXT}.includes('from the shell {marker}') && !{EDITOR_TEXT}.includes('mine')")
    expect(conflict).to_be_hidden()


def test_phone_tabs_run_shows_the_terminal_and_check_stays_in_view(live_site, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = context.new_page()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(f"{live_site}/lessons/{LESSON}/")
        tabs = page.get_by_role("tablist", name="Lesson views")
        expect(tabs).to_be_visible()
        # The sandbox pane (with its guest button) is the terminal's tab.
        expect(page.get_by_role("button", name="Continue as guest")).to_be_hidden()
        tabs.get_by_role("tab", name="Terminal").tap()
        page.get_by_role("button", name="Continue as guest").tap()
        page.wait_for_load_state("load")
        # The instructions first; the sandbox is one tap away.
        expect(page.locator("#lesson-text h1")).to_be_visible()
        expect(page.locator("#sandbox-pane")).to_be_hidden()
        tabs.get_by_role("tab", name="Terminal").tap()
        page.get_by_role("button", name="Start sandbox").tap()
        expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=15000)
        expect(page.locator("#terminal .xterm-rows")).to_contain_text("$", timeout=10000)
        tabs.get_by_role("tab", name="Instructions").tap()
        expect(page.locator("#terminal")).to_be_hidden()
        page.screenshot(path=str(SCREENSHOTS / "editor-phone-instructions.png"))

        # A tapped Run shows the terminal tab, fitted to the phone, with the command in it.
        run = page.locator(".lesson-text button.code-action", has_text="Run").first
        run.scroll_into_view_if_needed()
        run.tap()
        expect(tabs.get_by_role("tab", name="Terminal")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#terminal")).to_be_visible()
        expect(page.locator("#lesson-text .step-body")).to_be_hidden()
        wait_until(page, "document.getElementById('terminal').terminal.cols < 60")
        width = page.evaluate("({scroll: document.documentElement.scrollWidth, inner: innerWidth})")
        assert width["scroll"] <= width["inner"], width
        screen = page.evaluate("document.querySelector('#terminal .xterm-screen').getBoundingClientRect().right")
        assert screen <= 390
        # Check and the step navigation stay in view under the terminal.
        assert in_viewport(page, "button[data-check]")
        page.screenshot(path=str(SCREENSHOTS / "editor-phone-terminal.png"))

        tabs.get_by_role("tab", name="Editor").tap()
        expect(page.locator("#editor-panel")).to_be_visible()
        expect(page.locator("#terminal")).to_be_hidden()
        assert in_viewport(page, "button[data-check]")
        width = page.evaluate("({scroll: document.documentElement.scrollWidth, inner: innerWidth})")
        assert width["scroll"] <= width["inner"], width
        page.screenshot(path=str(SCREENSHOTS / "editor-phone-editor.png"))
    finally:
        context.close()
