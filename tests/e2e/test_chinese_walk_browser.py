"""A walk through the site in Chinese, in Chromium: a visitor switches the language on the
catalogue; an instructor (browser asking for zh-hans) makes a classroom and watches it; a learner
joins, opens a translated lesson, starts a sandbox and opens a lesson that is not translated yet;
the instructor watches the class in the watch grid; a visitor mistyping a password is throttled.
No page shows English outside lesson content marked lang="en", code and the terminal, apart from
product names. Screenshots go to test-results/screenshots/zh-*.png for a person to look at."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import UNTRANSLATED_LESSON, live_site_env

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
PASSWORD = "correct horse battery 9"
TRANSLATED = "what-is-a-container"
UNTRANSLATED = UNTRANSLATED_LESSON  # an English-only copy the live site serves from LESSON_DIRS

# Names that stay as they are in Chinese text.
PRODUCT_NAMES = {"Docker", "Kubernetes", "kubectl", "Linux", "CSV", "QR", "Dockerfile", "Killercoda", "Katacoda"}

# Lesson content (written by lesson authors, translated or not): its titles, summaries and text.
# Translated lessons keep terms such as Pod or ConfigMap in English on purpose.
LESSON_CONTENT = ", ".join([
    ".lesson-blurb", ".crumbs a[href$='/about/']", ".steps-nav li", ".step-title span", ".step-body", ".lesson-intro",
    ".quiz legend", ".quiz label", ".hints", "#solution", ".learned", ".finish-steps td",
    ".classroom-form label.check span", ".classroom-list a", "#progress-grid th", "#insights td:first-child > span",
    ".watch h1 span",
])

# Runs in the page: every visible text (and the words of titles, labels and placeholders) that is
# not in an element marked as another language than Chinese, not code and not the terminal.
_VISIBLE_TEXTS = """(lessonContent) => {
  const outside = (el) => {
    const marked = el.closest("[lang]");
    if (marked && !marked.lang.toLowerCase().startsWith("zh")) return false;
    return !el.closest("code, pre, kbd, samp, script, style, noscript, .xterm, template, " + lessonContent);
  };
  const visible = (el) => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement, text = node.textContent.trim();
    if (!text || !el || el.tagName === "OPTION" && !el.selected) continue;
    if (outside(el) && visible(el)) found.push({text, where: el.outerHTML.slice(0, 120)});
  }
  for (const el of document.querySelectorAll("[title], [aria-label], [placeholder], [alt]")) {
    if (!outside(el) || !visible(el)) continue;
    for (const name of ["title", "aria-label", "placeholder", "alt"]) {
      const text = (el.getAttribute(name) || "").trim();
      if (text) found.push({text, where: name + " of " + el.outerHTML.slice(0, 120)});
    }
  }
  // The title names the lesson and step (lesson content) beside the site's words.
  let title = document.title;
  for (const el of document.querySelectorAll(lessonContent)) {
    const text = el.textContent.trim();
    if (text) title = title.split(text).join(" ");
  }
  found.push({text: title, where: "the document title"});
  return found;
}"""


def _english(page, allowed: set[str]) -> list[str]:
    """The visible English on the page: Latin words of two letters or more that are not product
    names or the walk's own data (names, the join code, addresses)."""
    problems = []
    for item in page.evaluate(_VISIBLE_TEXTS, LESSON_CONTENT):
        text = re.sub(r"https?://\S+|/[\w./?=&%-]*", " ", item["text"])
        for data in allowed:
            text = text.replace(data, " ")
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z']+", text) if w not in PRODUCT_NAMES]
        if words:
            problems.append(f"{' '.join(words)!r} in {item['where']}")
    return problems


def _check(page, name: str, allowed: set[str] = frozenset()) -> None:
    assert page.locator("html").get_attribute("lang") == "zh-hans", f"{name} is not in Chinese"
    page.screenshot(path=str(SCREENSHOTS / f"zh-{name}.png"), full_page=True)
    english = _english(page, set(allowed))
    assert not english, f"English on the {name} page:\n" + "\n".join(english)


def test_a_chinese_walk_shows_no_english_outside_lessons(live_site, browser, tmp_path_factory):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chinese = {"viewport": {"width": 1280, "height": 800}, "extra_http_headers": {"Accept-Language": "zh-hans"}}
    visitor_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    teacher_ctx = browser.new_context(**chinese)
    learner_ctx = browser.new_context(**chinese)
    try:
        # The language switch: an English visitor chooses Chinese on the catalogue.
        visitor = visitor_ctx.new_page()
        visitor.goto(live_site + "/")
        assert visitor.locator("html").get_attribute("lang") == "en"
        visitor.locator(".language-switch select").select_option("zh-hans")
        expect(visitor.locator("html")).to_have_attribute("lang", "zh-hans")
        _check(visitor, "catalogue")
        untranslated = visitor.locator(f'.lesson-card[data-lesson="{UNTRANSLATED}"]')
        expect(untranslated.locator("[data-untranslated]")).to_be_visible()
        expect(untranslated.locator(".lesson-blurb")).to_have_attribute("lang", "en")
        visitor.goto(f"{live_site}/accounts/login/")
        _check(visitor, "login")

        teacher = teacher_ctx.new_page()
        teacher.goto(f"{live_site}/accounts/signup/")
        _check(teacher, "signup")
        teacher.fill("input[name=username]", "李老师")
        teacher.fill("input[name=password1]", PASSWORD)
        teacher.fill("input[name=password2]", PASSWORD)
        teacher.locator("form button").last.click()
        teacher.fill("input[name=username]", "李老师")
        teacher.fill("input[name=password]", PASSWORD)
        teacher.locator("form.form button.primary").click()
        subprocess.run([sys.executable, "manage.py", "grant_instructor", "李老师"], cwd=ROOT,
                       env=live_site_env(tmp_path_factory), check=True, capture_output=True)
        teacher.goto(f"{live_site}/classrooms/")
        _check(teacher, "classroom-list-empty")
        teacher.fill("input[name=name]", "容器入门班")
        for slug in (TRANSLATED, UNTRANSLATED):
            teacher.locator(f"input[name=lessons][value={slug}]").check()
        teacher.locator("form.classroom-form button.primary").click()
        join_url = teacher.locator("[data-join-url]").get_attribute("href")
        code = teacher.locator(".join-code").inner_text().strip()
        dashboard = teacher.url

        learner = learner_ctx.new_page()
        learner.goto(join_url)
        _check(learner, "join")
        learner.fill("input[name=display_name]", "小红")
        learner.locator("form.classroom-form button.primary").click()
        expect(learner.get_by_role("heading", name="容器入门班")).to_be_visible()
        _check(learner, "classroom-mine")
        learner.goto(f"{live_site}/classrooms/join/")
        _check(learner, "join-by-code")
        learner.goto(f"{live_site}/lessons/{TRANSLATED}/")
        _check(learner, "lesson-before-start")
        learner.locator("#sandbox-pane button.primary").click()
        expect(learner.locator("[data-console-status]")).to_have_text("已连接", timeout=60000)
        expect(learner.locator("#terminal .xterm-rows")).to_contain_text("$", timeout=15000)
        _check(learner, "lesson-running")
        learner.goto(f"{live_site}/lessons/{UNTRANSLATED}/")
        expect(learner.locator("[data-untranslated]")).to_be_visible()
        expect(learner.locator(".step-body")).to_have_attribute("lang", "en")
        expect(learner.locator(".step-title span")).to_have_attribute("lang", "en")
        _check(learner, "lesson-untranslated")
        learner.goto(f"{live_site}/classrooms/")
        _check(learner, "classroom-list-learner")

        teacher.goto(f"{live_site}/classrooms/")
        _check(teacher, "classroom-list")
        teacher.goto(dashboard)
        expect(teacher.locator("#progress-grid [data-sandbox-state=running]")).to_be_visible(timeout=15000)
        expect(teacher.locator("#insights")).to_be_attached(timeout=15000)
        expect(teacher.locator("#progress-grid th.lesson-head[lang=en]")).to_have_count(1)
        expect(teacher.locator(f'#insights tr[data-step^="{UNTRANSLATED}:"] td:first-child > span').first).to_have_attribute("lang", "en")
        _check(teacher, "dashboard", {code})
        teacher.goto(dashboard.rstrip("/") + "/projector/")
        _check(teacher, "projector", {code, code[:4], code[4:]})
        teacher.goto(dashboard)
        teacher.locator("#progress-grid a[data-watch]").click()
        expect(teacher.locator("[data-console-status]")).to_have_text("已连接", timeout=30000)
        _check(teacher, "watch")
        teacher.goto(dashboard)
        teacher.locator("[data-watch-grid-link]").click()
        tile = teacher.locator("[data-watch-tile]")
        expect(tile).to_have_count(1)
        expect(tile.locator("[data-tile-status]")).to_have_text("已连接", timeout=30000)
        _check(teacher, "watch-grid")

        # A throttled action: wrong passwords until the log-in locks, answered in Chinese.
        visitor.goto(f"{live_site}/accounts/login/")
        for _ in range(12):
            visitor.fill("input[name=username]", "无此用户")
            visitor.fill("input[name=password]", "wrong password")
            with visitor.expect_navigation():
                visitor.locator("form.form button.primary").click()
            if visitor.locator("[data-throttled]").count():
                break
        expect(visitor.locator("[data-throttled]")).to_contain_text("失败的登录太多")
        _check(visitor, "login-throttled")
    finally:
        visitor_ctx.close()
        teacher_ctx.close()
        learner_ctx.close()
