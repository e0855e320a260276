"""Hint (POST): reveals the next hint in order, recorded per learner."""

import pytest
from django.test import Client

from lessons.catalogue import get_lesson
from lessons.models import StepProgress
from tests.factories import signed_in_client

SLUG = "what-is-a-container"


def _url() -> tuple[str, object]:
    step = get_lesson(SLUG).steps[0]
    return f"/lessons/{SLUG}/steps/{step.slug}/hint/", step


@pytest.mark.django_db
def test_hints_are_revealed_in_order_and_counted(owner, classmate):
    url, step = _url()
    client = signed_in_client(owner)
    first = client.post(url).content.decode()
    assert step.hints[0] in first and step.hints[1] not in first and "Another hint" in first
    second = client.post(url).content.decode()
    assert step.hints[0] in second and step.hints[1] in second
    for _ in range(5):
        last = client.post(url).content.decode()
    assert all(h in last for h in step.hints) and "data-hint" not in last
    assert StepProgress.objects.get(user=owner, lesson=SLUG, step=step.slug).hints_used == len(step.hints)
    # The classmate's hints are their own.
    assert not StepProgress.objects.filter(user=classmate).exists()
    signed_in_client(classmate).post(url)
    assert StepProgress.objects.get(user=classmate, lesson=SLUG, step=step.slug).hints_used == 1


@pytest.mark.django_db
def test_anonymous_is_sent_to_log_in_and_nothing_is_recorded(outsider):
    url, _step = _url()
    response = signed_in_client().post(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not StepProgress.objects.exists()


@pytest.mark.django_db
def test_get_is_refused_and_locked_steps_are_forbidden(outsider):
    url, _step = _url()
    assert signed_in_client(outsider).get(url).status_code == 405
    locked = get_lesson(SLUG).steps[3]
    assert signed_in_client(outsider).post(f"/lessons/{SLUG}/steps/{locked.slug}/hint/").status_code == 403


@pytest.mark.django_db
def test_csrf_is_enforced(owner):
    url, _step = _url()
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(url).status_code == 403
