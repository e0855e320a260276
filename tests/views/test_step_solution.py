"""Show solution (POST): reveals the solution script and records that the learner viewed it."""

import pytest

from lessons.catalogue import get_lesson
from lessons.models import StepProgress
from tests.factories import signed_in_client

SLUG = "what-is-a-container"


@pytest.mark.django_db
def test_owner_sees_the_solution_and_it_is_recorded(owner, classmate):
    step = get_lesson(SLUG).steps[0]
    response = signed_in_client(owner).post(f"/lessons/{SLUG}/steps/{step.slug}/solution/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-block="run"' in html and "cat /proc/1/comm &gt; ~/pid1.txt" in html
    progress = StepProgress.objects.get(user=owner, lesson=SLUG, step=step.slug)
    assert progress.solution_viewed
    assert not StepProgress.objects.filter(user=classmate).exists()


@pytest.mark.django_db
def test_the_step_page_does_not_leak_the_solution_before_it_is_asked_for(owner):
    step = get_lesson(SLUG).steps[0]
    html = signed_in_client(owner).get(f"/lessons/{SLUG}/steps/{step.slug}/").content.decode()
    assert "cat /proc/1/comm &gt; ~/pid1.txt" not in html
    signed_in_client(owner).post(f"/lessons/{SLUG}/steps/{step.slug}/solution/")
    assert "cat /proc/1/comm &gt; ~/pid1.txt" in signed_in_client(owner).get(f"/lessons/{SLUG}/steps/{step.slug}/").content.decode()


@pytest.mark.django_db
def test_anonymous_and_locked(outsider):
    lesson = get_lesson(SLUG)
    assert signed_in_client().post(f"/lessons/{SLUG}/steps/{lesson.steps[0].slug}/solution/").status_code == 302
    assert signed_in_client(outsider).post(f"/lessons/{SLUG}/steps/{lesson.steps[4].slug}/solution/").status_code == 403
    assert not StepProgress.objects.filter(solution_viewed_at__isnull=False).exists()
