"""A step page (/lessons/<slug>/steps/<step>/): open once every earlier gated step is passed."""

import pytest
from django.utils import timezone

from lessons.catalogue import get_lesson
from lessons.models import StepProgress
from tests.factories import signed_in_client

SLUG = "what-is-a-container"


@pytest.mark.django_db
def test_locked_step_redirects_to_the_first_open_one(owner):
    lesson = get_lesson(SLUG)
    response = signed_in_client(owner).get(f"/lessons/{SLUG}/steps/{lesson.steps[2].slug}/")
    assert response.status_code == 302
    assert response["Location"] == f"/lessons/{SLUG}/steps/{lesson.steps[0].slug}/"


@pytest.mark.django_db
def test_owner_opens_the_next_step_after_passing(owner, classmate, outsider):
    lesson = get_lesson(SLUG)
    StepProgress.objects.create(user=owner, lesson=SLUG, step=lesson.steps[0].slug, passed_at=timezone.now())
    url = f"/lessons/{SLUG}/steps/{lesson.steps[1].slug}/"
    response = signed_in_client(owner).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-check" in html and "data-hint" in html and "data-show-solution" in html
    assert 'data-block="run"' in html
    # The owner's progress opens nothing for anyone else.
    for other in (classmate, outsider):
        assert signed_in_client(other).get(url).status_code == 302


@pytest.mark.django_db
def test_passed_step_shows_next_enabled(owner):
    lesson = get_lesson(SLUG)
    StepProgress.objects.create(user=owner, lesson=SLUG, step=lesson.steps[0].slug, passed_at=timezone.now())
    html = signed_in_client(owner).get(f"/lessons/{SLUG}/steps/{lesson.steps[0].slug}/").content.decode()
    assert f'href="/lessons/{SLUG}/steps/{lesson.steps[1].slug}/" data-next' in html


@pytest.mark.django_db
def test_step_in_chinese(owner):
    client = signed_in_client(owner)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    html = client.get(f"/lessons/{SLUG}/").content.decode()
    assert "进程与 PID 1" in html
    assert "检查" in html  # the Check button, translated


@pytest.mark.django_db
def test_unknown_step_is_404(owner):
    assert signed_in_client(owner).get(f"/lessons/{SLUG}/steps/no-such-step/").status_code == 404
