"""Catalogue: every lesson, with the progress of the learner looking at it (and nobody else's)."""

import pytest
from django.utils import timezone

from lessons.catalogue import get_lesson
from lessons.models import StepProgress
from tests.factories import signed_in_client


def _pass_steps(user, slug: str, count: int) -> None:
    lesson = get_lesson(slug)
    for step in lesson.steps[:count]:
        StepProgress.objects.create(user=user, lesson=slug, step=step.slug, passed_at=timezone.now())


@pytest.mark.django_db
def test_owner_sees_their_own_progress(owner):
    _pass_steps(owner, "big-picture", 2)
    html = signed_in_client(owner).get("/").content.decode()
    total = len(get_lesson("big-picture").steps)
    assert f'data-progress="2/{total}"' in html
    assert "Docker and Kubernetes: the big picture" in html and "What a container really is" in html


@pytest.mark.django_db
def test_classmate_does_not_see_the_owners_progress(owner, classmate):
    _pass_steps(owner, "big-picture", 2)
    html = signed_in_client(classmate).get("/").content.decode()
    assert f'data-progress="0/{len(get_lesson("big-picture").steps)}"' in html


@pytest.mark.django_db
def test_outsider_and_anonymous_see_the_catalogue_without_progress(owner, outsider):
    _pass_steps(owner, "big-picture", 2)
    assert 'data-progress="2/' not in signed_in_client(outsider).get("/").content.decode()
    anonymous = signed_in_client().get("/")
    assert anonymous.status_code == 200
    assert "data-progress" not in anonymous.content.decode()
    assert "What a container really is" in anonymous.content.decode()


@pytest.mark.django_db
def test_finished_lesson_links_to_its_summary(owner):
    _pass_steps(owner, "big-picture", 99)
    html = signed_in_client(owner).get("/").content.decode()
    assert "/lessons/big-picture/finish/" in html


@pytest.mark.django_db
def test_catalogue_in_chinese(owner):
    client = signed_in_client(owner)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    html = client.get("/").content.decode()
    assert "Docker 与 Kubernetes：全景" in html
