"""Lesson page (/lessons/<slug>/): the learner's current step beside the terminal pane."""

import pytest
from django.utils import timezone

from lessons.catalogue import get_lesson
from lessons.models import StepProgress
from sandbox.models import Sandbox
from tests.factories import signed_in_client

SLUG = "big-picture"


@pytest.mark.django_db
def test_owner_gets_their_first_unpassed_step_and_it_is_recorded(owner):
    lesson = get_lesson(SLUG)
    StepProgress.objects.create(user=owner, lesson=SLUG, step=lesson.steps[0].slug, passed_at=timezone.now())
    response = signed_in_client(owner).get(f"/lessons/{SLUG}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-step="{lesson.steps[1].slug}"' in html and "Step 2:" in html
    progress = StepProgress.objects.get(user=owner, lesson=SLUG, step=lesson.steps[1].slug)
    assert progress.first_opened_at is not None and progress.passed_at is None
    # The terminal pane and the console scripts are on the page.
    assert 'id="sandbox-pane"' in html and "js/terminal.js" in html and "js/lessons.js" in html


@pytest.mark.django_db
def test_classmate_starts_at_step_one_and_does_not_see_the_owners_sandbox(owner, classmate):
    lesson = get_lesson(SLUG)
    StepProgress.objects.create(user=owner, lesson=SLUG, step=lesson.steps[0].slug, passed_at=timezone.now())
    sandbox = Sandbox.objects.create(owner=owner, lesson=SLUG, workspace="plain", image="tutorial/base:latest", state="running")
    html = signed_in_client(classmate).get(f"/lessons/{SLUG}/").content.decode()
    assert "Step 1:" in html
    assert str(sandbox.id) not in html


@pytest.mark.django_db
def test_outsider_and_anonymous_can_read_but_not_check(outsider):
    for client in (signed_in_client(outsider), signed_in_client()):
        response = client.get(f"/lessons/{SLUG}/")
        assert response.status_code == 200
    html = signed_in_client().get(f"/lessons/{SLUG}/").content.decode()
    assert "data-check" not in html and "Continue as guest" in html


@pytest.mark.django_db
def test_unknown_lesson_is_404(owner):
    assert signed_in_client(owner).get("/lessons/no-such-lesson/").status_code == 404


@pytest.mark.django_db
def test_injected_html_in_an_instructors_lesson_is_inert(owner, settings, tmp_path):
    folder = tmp_path / "extra" / "injected"
    (folder / "steps").mkdir(parents=True)
    (folder / "lesson.md").write_text(
        "---\ntitle: Injected\nsummary: x\nworkspace: plain\nminutes: 1\norder: 90\n---\n<script>alert('lesson')</script>\n"
    )
    (folder / "steps" / "01-evil.md").write_text(
        "---\ntitle: Evil <b>step</b>\n---\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(2))\n"
    )
    settings.LESSON_DIRS = [str(tmp_path / "extra")]
    html = signed_in_client(owner).get("/lessons/injected/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;alert" in html
    assert "Evil &lt;b&gt;step&lt;/b&gt;" in html
