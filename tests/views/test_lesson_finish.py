"""Finish page: what the learner learned and how it went; only once the lesson is done."""

import pytest
from django.utils import timezone

from lessons.catalogue import get_lesson
from lessons.models import CheckAttempt, StepProgress
from tests.factories import signed_in_client

SLUG = "big-picture"


def _finish(user) -> None:
    for step in get_lesson(SLUG).steps:
        progress = StepProgress.objects.create(user=user, lesson=SLUG, step=step.slug, passed_at=timezone.now(), hints_used=1)
        CheckAttempt.objects.create(progress=progress, outcome="failed", feedback="no")
        CheckAttempt.objects.create(progress=progress, outcome="passed", feedback="yes")


@pytest.mark.django_db
def test_owner_who_finished_sees_the_summary(owner):
    _finish(owner)
    response = signed_in_client(owner).get(f"/lessons/{SLUG}/finish/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "What you learned" in html and "declared desired state" in html
    assert "<td>2</td><td>1</td>" in html  # two checks, one hint per step
    assert "Next lesson: What a container really is" in html


@pytest.mark.django_db
def test_classmate_and_outsider_who_did_not_finish_are_sent_back(owner, classmate, outsider):
    _finish(owner)
    for user in (classmate, outsider):
        response = signed_in_client(user).get(f"/lessons/{SLUG}/finish/")
        assert response.status_code == 302 and response["Location"].startswith(f"/lessons/{SLUG}/steps/")


@pytest.mark.django_db
def test_anonymous_must_log_in():
    response = signed_in_client().get(f"/lessons/{SLUG}/finish/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
