"""Two browsers: a learner joins a classroom by its link and types in their terminal while the
instructor, from the live dashboard, watches that terminal read-only, then takes control."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import live_site_env

pytestmark = [pytest.mark.browser, pytest.mark.engine]
ROOT = Path(__file__).resolve().parents[2]


def test_instructor_watches_a_learner_type_then_takes_control(live_site, browser, tmp_path_factory):
    teacher_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    learner_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        teacher = teacher_ctx.new_page()
        teacher.goto(f"{live_site}/accounts/signup/")
        teacher.fill("input[name=username]", "teacher-e2e")
        teacher.fill("input[name=password1]", "correct horse battery 9")
        teacher.fill("input[name=password2]", "correct horse battery 9")
        teacher.locator("form button").last.click()
        # Sign-up answers alike whether the name was free (no enumeration), so it does not sign in.
        teacher.fill("input[name=password]", "correct horse battery 9")
        teacher.fill("input[name=username]", "teacher-e2e")
        teacher.get_by_role("button", name="Log in", exact=True).click()
        subprocess.run([sys.executable, "manage.py", "grant_instructor", "teacher-e2e"], cwd=ROOT,
                       env=live_site_env(tmp_path_factory), check=True, capture_output=True)

        teacher.goto(f"{live_site}/classrooms/")
        teacher.fill("input[name=name]", "Browser class")
        teacher.locator("input[name=lessons][value=what-is-a-container]").check()
        teacher.get_by_role("button", name="Create classroom").click()
        expect(teacher.locator("[data-live-status]")).to_have_text("live", timeout=10000)
        join_url = teacher.locator("[data-join-url]").get_attribute("href")

        learner = learner_ctx.new_page()
        learner.goto(join_url)
        learner.fill("input[name=display_name]", "Lena Learner")
        learner.get_by_role("button", name="Join").click()
        # Exact: the join page's own heading ("Join “Browser class”") must not count as joined.
        expect(learner.get_by_role("heading", name="Browser class", exact=True)).to_be_visible()
        learner.get_by_role("link", name="What a container really is").first.click()
        learner.get_by_role("button", name="Start sandbox").click()
        expect(learner.locator("[data-console-status]")).to_have_text("Connected", timeout=20000)

        # The sandbox state reaches the dashboard live; the learner's row offers "watch".
        expect(teacher.locator("#progress-grid")).to_contain_text("Lena Learner", timeout=10000)
        watch = teacher.locator("a[data-watch]")
        expect(watch).to_be_visible(timeout=15000)
        watch.click()
        expect(teacher.locator("[data-console-status]")).to_have_text("Connected", timeout=15000)
        expect(teacher.locator("[data-control]")).to_have_attribute("data-control", "read-only")

        learner.locator("#terminal").click()
        learner.keyboard.type("echo shadow-$((6*7))")
        learner.keyboard.press("Enter")
        expect(teacher.locator("#terminal .xterm-rows")).to_contain_text("shadow-42", timeout=10000)

        # Read-only: what the instructor types does not reach the learner's shell.
        teacher.locator("#terminal").click()
        teacher.keyboard.type("echo peek-$((5*5))")
        teacher.keyboard.press("Enter")
        learner.keyboard.type("echo mark-$((2+2))")
        learner.keyboard.press("Enter")
        expect(learner.locator("#terminal .xterm-rows")).to_contain_text("mark-4", timeout=10000)
        assert "peek-25" not in learner.locator("#terminal .xterm-rows").inner_text()

        # Taking control and giving it back happen in place: the watch page is never reloaded.
        teacher.evaluate("window.sameWatchPage = true")
        teacher.get_by_role("button", name="Take control").click()
        expect(learner.locator("#console-notice")).to_contain_text("has taken control", timeout=10000)
        expect(teacher.locator("[data-control]")).to_have_attribute("data-control", "full")
        expect(teacher.locator("[data-console-status]")).to_have_text("Connected", timeout=15000)
        teacher.locator("#terminal").click()
        teacher.keyboard.type("echo teacher-$((8*8))")
        teacher.keyboard.press("Enter")
        expect(learner.locator("#terminal .xterm-rows")).to_contain_text("teacher-64", timeout=10000)

        teacher.get_by_role("button", name="Give control back").click()
        expect(teacher.locator("[data-control]")).to_have_attribute("data-control", "read-only")
        expect(teacher.locator("[data-console-status]")).to_have_text("Connected", timeout=15000)
        teacher.locator("#terminal").click()
        teacher.keyboard.type("echo again-$((3*3))")
        teacher.keyboard.press("Enter")
        learner.keyboard.type("echo last-$((4+4))")
        learner.keyboard.press("Enter")
        expect(learner.locator("#terminal .xterm-rows")).to_contain_text("last-8", timeout=10000)
        assert "again-9" not in learner.locator("#terminal .xterm-rows").inner_text()
        assert teacher.evaluate("window.sameWatchPage === true")
    finally:
        teacher_ctx.close()
        learner_ctx.close()
