"""A cheat must fail: for every checked step of every Docker and plain lesson (discovered from every
lesson folder, so lessons added later are covered), a learner who only echoes the texts they can
see, and writes them into the files the step names, does not pass the check. Real engine; one
sandbox per lesson. Kubernetes lessons: ``tests/kubernetes/test_lessons_cheat_real_cluster.py``.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from lessons.catalogue import all_lessons
from tests.integration.lesson_cheat import cheat_every_step
from tests.integration.test_lessons_solutions import ensure_lesson_image

LESSONS = [lesson for lesson in all_lessons() if lesson.workspace != "kubernetes" and any(s.check for s in lesson.steps)]


def test_checked_lessons_are_discovered():
    assert {"what-is-a-container", "images"} <= {lesson.slug for lesson in LESSONS}


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(900)
@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.slug for lesson in LESSONS])
async def test_echoing_the_texts_passes_no_check(lesson, docker_client, base_image, labelled_leftovers):
    async def ensure_image(name: str) -> None:
        await sync_to_async(ensure_lesson_image)(docker_client, name)

    passed = await cheat_every_step(lesson, ensure_image, labelled_leftovers)
    assert passed == [], "checks a cheat passes:\n" + "\n".join(passed)
