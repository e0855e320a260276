"""Before a lesson: its overview (what it teaches, what it builds on and whether that is done, its
steps and time), prerequisites offered on its first step, and the finish page's running sandbox."""

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from lessons.catalogue import get_lesson
from lessons.models import StepProgress
from sandbox import services
from tests.factories import signed_in_client

LESSON = "pods"  # builds on what-is-a-container


def _pass(user, slug: str, count: int | None = None) -> None:
    for step in get_lesson(slug).steps[:count]:
        StepProgress.objects.create(user=user, lesson=slug, step=step.slug, passed_at=timezone.now())


@pytest.mark.django_db
def test_overview_says_what_you_learn_what_it_builds_on_its_steps_and_time():
    lesson = get_lesson(LESSON)
    html = signed_in_client().get(f"/lessons/{LESSON}/about/").content.decode()
    assert "What you will learn" in html and "CrashLoopBackOff" in html
    assert f"about {lesson.minutes} minutes" in html and f"{len(lesson.steps)} steps" in html
    assert all(step.title in html for step in lesson.steps)
    assert 'data-prerequisite="what-is-a-container"' in html and "not finished yet" in html
    assert f'href="/lessons/{LESSON}/"' in html and "Begin" in html


@pytest.mark.django_db
def test_overview_follows_the_learners_progress(owner):
    _pass(owner, "what-is-a-container")
    _pass(owner, LESSON, 2)
    html = signed_in_client(owner).get(f"/lessons/{LESSON}/about/").content.decode()
    assert "✓ finished" in html and "not finished yet" not in html
    assert "Continue" in html and html.count('aria-label="passed"') == 2


@pytest.mark.django_db
def test_overview_in_chinese():
    client = signed_in_client()
    html = client.get(f"/lessons/{LESSON}/about/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "你将学到" in html and "先修课程" in html and "开始学习" in html


@pytest.mark.django_db
def test_catalogue_sends_newcomers_to_the_overview_and_returning_learners_to_their_step(owner):
    anonymous = signed_in_client().get("/").content.decode()
    assert f'href="/lessons/{LESSON}/about/"' in anonymous
    _pass(owner, LESSON, 1)
    mine = signed_in_client(owner).get("/").content.decode()
    assert f'href="/lessons/{LESSON}/"' in mine


@pytest.mark.django_db
def test_first_step_offers_unfinished_prerequisites_without_forcing_them(owner):
    html = signed_in_client(owner).get(f"/lessons/{LESSON}/").content.decode()
    assert "data-prerequisites" in html and 'href="/lessons/what-is-a-container/about/"' in html
    _pass(owner, "what-is-a-container")
    assert "data-prerequisites" not in signed_in_client(owner).get(f"/lessons/{LESSON}/").content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.engine
def test_finish_page_offers_to_stop_a_sandbox_still_running(owner, fake_owners_sandbox):
    slug = fake_owners_sandbox.lesson
    _pass(owner, slug)
    client = signed_in_client(owner)
    html = client.get(f"/lessons/{slug}/finish/").content.decode()
    assert "Your sandbox is still running" in html and f'/sandboxes/{fake_owners_sandbox.id}/stop/' in html
    async_to_sync(services.stop_sandbox)(fake_owners_sandbox)
    assert "Your sandbox is still running" not in client.get(f"/lessons/{slug}/finish/").content.decode()
