"""axe-core (from npm, package-lock.json) in Chromium on every kind of page the site has: the
catalogue, a lesson before Start and with a running Docker sandbox, a Kubernetes lesson, login,
the classroom list, an instructor's dashboard with a learner in it, the instructor watching the
learner's terminal, the watch grid of small terminals, the join page, the projector page, a
learner's classroom page, a finish page, the lesson with its editor tab open, the lesson on a phone
with its Terminal tab shown, and a 404; in English and in Chinese, in light and dark colour schemes.
Every page has no axe violation at all. A screenshot of each goes to
test-results/screenshots/axe-*.png for a person to look at."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.test import RequestFactory
from django.utils import translation
from django.views.defaults import page_not_found
from playwright.sync_api import expect

from tests.e2e.browser import live_site_env

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery 9"
LESSON = "what-is-a-container"
KUBERNETES_LESSON = "pods"
FINISHED_LESSON = "containers"
LEARNER = "Ada Axe"

# The learner has passed the first step of LESSON, failed the second and opened the third, so the
# dashboard shows every state and the lesson page shows locked steps; the instructor has finished
# FINISHED_LESSON, for its finish page.
_SEED_PROGRESS = """
import sys, django
django.setup()
from django.contrib.auth import get_user_model
from django.utils import timezone
from classroom.models import Membership
from lessons.catalogue import all_lessons
from lessons.models import StepProgress, CheckAttempt
lessons = {lesson.slug: lesson for lesson in all_lessons()}
lesson_slug, finished_slug, learner_name, teacher_name = sys.argv[1:5]
learner = Membership.objects.get(display_name=learner_name).user
first, second, third = lessons[lesson_slug].steps[:3]
def progress(user, lesson, step, **fields):
    return StepProgress.objects.update_or_create(user=user, lesson=lesson, step=step, defaults=fields)[0]
done = progress(learner, lesson_slug, first.slug, passed_at=timezone.now(), hints_used=1)
CheckAttempt.objects.create(progress=done, outcome="passed", exit_code=0)
failing = progress(learner, lesson_slug, second.slug)
CheckAttempt.objects.create(progress=failing, outcome="failed", exit_code=1, feedback="No container named web is running.")
progress(learner, lesson_slug, third.slug)
teacher = get_user_model().objects.get(username=teacher_name)
for step in lessons[finished_slug].steps:
    progress(teacher, finished_slug, step.slug, passed_at=timezone.now())
"""

# Runs in the page: axe's violations, each with its rule, impact and the elements it found.
_RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))}));
}"""


def _axe_source() -> str:
    assert AXE.exists(), f"{AXE} is missing: run `make assets` (npm ci installs axe-core from package-lock.json)"
    return AXE.read_text()


def _sign_up_instructor(page, live_site, tmp_path_factory, username):
    page.goto(f"{live_site}/accounts/signup/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.locator("form button").last.click()
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    subprocess.run([sys.executable, "manage.py", "grant_instructor", username], cwd=ROOT,
                   env=live_site_env(tmp_path_factory), check=True, capture_output=True)


@pytest.fixture(scope="module")
def classroom_site(live_site, browser, tmp_path_factory):
    """An instructor with a classroom, a learner in it with a running sandbox, and progress; the
    two people's cookies (storage states) and the classroom's addresses."""
    teacher_ctx = browser.new_context()
    learner_ctx = browser.new_context()
    try:
        teacher = teacher_ctx.new_page()
        _sign_up_instructor(teacher, live_site, tmp_path_factory, "axe-teacher")
        teacher.goto(f"{live_site}/classrooms/")
        teacher.fill("input[name=name]", "Axe class")
        for slug in (LESSON, KUBERNETES_LESSON):
            teacher.locator(f"input[name=lessons][value={slug}]").check()
        teacher.locator("form.classroom-form button.primary").click()
        join_url = teacher.locator("[data-join-url]").get_attribute("href")
        dashboard = teacher.url

        learner = learner_ctx.new_page()
        learner.goto(join_url)
        learner.fill("input[name=display_name]", LEARNER)
        learner.locator("form.classroom-form button.primary").click()
        expect(learner.get_by_role("heading", name="Axe class")).to_be_visible()
        mine = learner.url
        learner.goto(f"{live_site}/lessons/{LESSON}/")
        learner.locator("#sandbox-pane button.primary").click()
        expect(learner.locator("[data-console-status]")).to_have_text("Connected", timeout=60000)
        seeded = subprocess.run([sys.executable, "-c", _SEED_PROGRESS, LESSON, FINISHED_LESSON, LEARNER, "axe-teacher"],
                                cwd=ROOT, env=live_site_env(tmp_path_factory), capture_output=True, text=True)
        assert seeded.returncode == 0, seeded.stderr
        teacher.goto(dashboard)
        watch = teacher.locator("#progress-grid a[data-watch]")
        expect(watch).to_be_visible(timeout=15000)
        watch_url = live_site + watch.get_attribute("href")
        yield {
            "teacher": teacher_ctx.storage_state(), "learner": learner_ctx.storage_state(),
            "join": join_url, "dashboard": dashboard, "mine": mine, "watch": watch_url,
        }
    finally:
        teacher_ctx.close()
        learner_ctx.close()


def _site_404(language):
    """The site's own 404 page as it is with DEBUG off (Django's handler and templates/404.html),
    served at the live site's address: the live site runs with DEBUG on, which shows Django's
    technical page instead."""
    request = RequestFactory().get("/no-such-page/", HTTP_ACCEPT_LANGUAGE=language)
    request.user = AnonymousUser()
    with translation.override(language):
        request.LANGUAGE_CODE = translation.get_language()
        body = page_not_found(request, Http404()).content
    return lambda route: route.fulfill(status=404, body=body, content_type="text/html; charset=utf-8")


def _wait_dashboard(page):
    expect(page.locator("#progress-grid tbody tr").first).to_be_visible(timeout=15000)
    expect(page.locator("#insights")).to_be_attached(timeout=15000)


def _wait_connected(page):
    expect(page.locator("[data-console-status]")).to_have_text(re.compile("^(Connected|已连接)$"), timeout=30000)


def _wait_grid(page):
    expect(page.locator("[data-tile-status]").first).to_have_text(re.compile("^(Connected|已连接)$"), timeout=30000)


def _wait_console(page):
    # The shell's prompt: the console is attached and the status line says so.
    expect(page.locator("#terminal .xterm-rows")).to_contain_text("$", timeout=60000)


def _open_editor(page):
    """The editor tab with a file open (by ids: the page may be in Chinese)."""
    _wait_console(page)
    page.locator("#pane-tab-editor").click()
    page.locator("#editor-path").fill("notes.txt")
    page.locator("[data-editor-open] button[type=submit]").click()
    expect(page.locator("[data-editor-status].ok")).to_be_visible(timeout=15000)


def _phone_terminal(page):
    """The same lesson on a phone, its Terminal tab shown (the page's tabs, the fixed task bar)."""
    page.set_viewport_size({"width": 390, "height": 844})
    _wait_console(page)
    page.locator("#phone-tab-terminal").click()
    expect(page.locator("#terminal")).to_be_visible()


# (name, who, path or key into classroom_site, how to know the page is ready)
PAGES = [
    ("catalogue", None, "/", None),
    ("login", None, "/accounts/login/", None),
    ("not-found", None, "/no-such-page/", None),
    ("join", None, "join", None),
    ("lesson-overview", "teacher", f"/lessons/{KUBERNETES_LESSON}/about/", None),
    ("lesson-before-start", "teacher", f"/lessons/{LESSON}/", None),
    ("scenario-import", "teacher", "/classrooms/import/", None),
    ("lesson-kubernetes", "teacher", f"/lessons/{KUBERNETES_LESSON}/", None),
    ("finish", "teacher", f"/lessons/{FINISHED_LESSON}/finish/", None),
    ("classroom-list", "teacher", "/classrooms/", None),
    ("dashboard", "teacher", "dashboard", _wait_dashboard),
    ("projector", "teacher", "projector", None),
    ("watch", "teacher", "watch", _wait_connected),
    ("watch-grid", "teacher", "grid", _wait_grid),
    ("lesson-running-sandbox", "learner", f"/lessons/{LESSON}/", _wait_console),
    ("lesson-editor-open", "learner", f"/lessons/{LESSON}/", _open_editor),
    ("classroom-mine", "learner", "mine", None),
    # Last: it leaves the learner's window at phone size.
    ("lesson-phone-terminal", "learner", f"/lessons/{LESSON}/", _phone_terminal),
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_every_page_has_no_axe_violations(live_site, browser, classroom_site, language, scheme):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    axe = _axe_source()
    found = {}
    contexts = {}
    try:
        for name, who, where, ready in PAGES:
            if who not in contexts:
                contexts[who] = browser.new_context(
                    viewport={"width": 1280, "height": 800}, color_scheme=scheme,
                    extra_http_headers={"Accept-Language": language},
                    storage_state=classroom_site[who] if who else None)
            page = contexts[who].pages[0] if contexts[who].pages else contexts[who].new_page()
            if where.startswith("/"):
                url = live_site + where
            elif where in ("projector", "grid"):
                url = classroom_site["dashboard"].rstrip("/") + f"/{where}/"
            else:
                url = classroom_site[where]
            if name == "not-found":
                page.route(url, _site_404(language))
            response = page.goto(url)
            assert response.status == (404 if name == "not-found" else 200), f"{name}: {url} answered {response.status}"
            assert page.locator("html").get_attribute("lang") == language, f"{name} is not in {language}"
            if ready:
                ready(page)
            page.evaluate(axe)
            violations = page.evaluate(_RUN_AXE)
            page.screenshot(path=str(SCREENSHOTS / f"axe-{name}-{language}-{scheme}.png"), full_page=True)
            if violations:
                found[name] = violations
    finally:
        for context in contexts.values():
            context.close()
    report = "\n".join(
        f"{name}: {v['id']} ({v['impact']}: {v['help']}) at " + "; ".join(n["target"] for n in v["nodes"])
        for name, violations in found.items() for v in violations)
    assert not found, f"axe violations ({language}, {scheme}):\n{report}"
