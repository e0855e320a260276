"""In Chromium: the instructor's Remove asks first (dismissing keeps the learner), the message
names the learner by display name, and the projector page shows the join code in type readable
from the back of a room beside a square QR code, with no sideways scroll on a laptop or a phone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import live_site_env

pytestmark = [pytest.mark.browser, pytest.mark.engine]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results" / "screenshots"


def _instructor(page, live_site, tmp_path_factory, username):
    page.goto(f"{live_site}/accounts/signup/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password1]", "correct horse battery 9")
    page.fill("input[name=password2]", "correct horse battery 9")
    page.locator("form button").last.click()
    page.fill("input[name=password]", "correct horse battery 9")
    page.fill("input[name=username]", username)
    page.get_by_role("button", name="Log in", exact=True).click()
    subprocess.run([sys.executable, "manage.py", "grant_instructor", username], cwd=ROOT,
                   env=live_site_env(tmp_path_factory), check=True, capture_output=True)


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_remove_asks_first_and_the_projector_shows_code_and_qr(live_site, browser, tmp_path_factory):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    teacher_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    learner_ctx = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        teacher = teacher_ctx.new_page()
        _instructor(teacher, live_site, tmp_path_factory, "projector-e2e")
        teacher.goto(f"{live_site}/classrooms/")
        teacher.fill("input[name=name]", "Projector class")
        teacher.locator("input[name=lessons][value=what-is-a-container]").check()
        teacher.get_by_role("button", name="Create classroom").click()
        join_url = teacher.locator("[data-join-url]").get_attribute("href")
        code = teacher.locator(".join-code").inner_text().strip()

        learner = learner_ctx.new_page()
        learner.goto(join_url)
        learner.fill("input[name=display_name]", "Lena Learner")
        learner.get_by_role("button", name="Join").click()
        expect(learner.get_by_role("heading", name="Projector class")).to_be_visible()

        teacher.reload()
        row = teacher.locator("table.roster tr", has_text="Lena Learner")
        asked = []
        teacher.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        row.get_by_role("button", name="Remove").click()
        teacher.wait_for_timeout(300)
        assert asked and "Remove Lena Learner from the class?" in asked[0]
        expect(row).to_be_visible()  # dismissed: nothing was sent
        teacher.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Remove").click()
        expect(teacher.get_by_text("Removed Lena Learner from the class.")).to_be_visible()
        expect(teacher.locator("table.roster tr", has_text="Lena Learner")).to_have_count(0)

        projector_url = teacher.locator("[data-projector-link]").get_attribute("href")
        for width, height, name in [(1280, 800, "laptop"), (390, 844, "phone")]:
            teacher.set_viewport_size({"width": width, "height": height})
            teacher.goto(live_site + projector_url)
            big = teacher.locator("[data-join-code]")
            expect(big).to_have_text(f"{code[:4]} {code[4:]}")
            assert float(big.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= (96 if width > 800 else 40)
            qr = teacher.locator("svg.qr-code")
            expect(qr).to_be_visible()
            box = qr.bounding_box()
            assert box["width"] >= 200 and abs(box["width"] - box["height"]) < 2
            assert _no_sideways_scroll(teacher), f"the projector page scrolls sideways at {width} px"
            # The whole code is on show: not cut off, not under the QR code, not past the edge.
            assert big.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
            code_box = big.evaluate("e => { const r = document.createRange(); r.selectNodeContents(e); const b = r.getBoundingClientRect(); return {x: b.x, y: b.y, right: b.right, bottom: b.bottom}; }")
            assert code_box["x"] >= 0 and code_box["right"] <= width
            assert code_box["bottom"] <= box["y"] or code_box["y"] >= box["y"] + box["height"] \
                or code_box["right"] <= box["x"] or code_box["x"] >= box["x"] + box["width"], "the code runs under the QR code"
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
            teacher.screenshot(path=str(SCREENSHOTS / f"classroom-projector-{name}.png"), full_page=True)
    finally:
        teacher_ctx.close()
        learner_ctx.close()
