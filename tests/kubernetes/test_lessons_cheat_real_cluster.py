"""A cheat must fail, on the real cluster: for every checked step of every Kubernetes lesson
(discovered from every lesson folder), a learner who only echoes the texts they can see, and writes
them into the files the step names, does not pass the check. One namespace per lesson; the
machinery is ``tests/integration/lesson_cheat.py``.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from lessons.catalogue import all_lessons
from tests.integration.lesson_cheat import cheat_every_step
from tests.integration.test_lessons_solutions import ensure_lesson_image
from tests.kubernetes.real_cluster import point_settings_at_cluster

LESSONS = [lesson for lesson in all_lessons() if lesson.workspace == "kubernetes" and any(s.check for s in lesson.steps)]


def test_kubernetes_lessons_are_discovered():
    assert {"pods", "services"} <= {lesson.slug for lesson in LESSONS}


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.slug for lesson in LESSONS])
async def test_echoing_the_texts_passes_no_check(lesson, docker_client, settings):
    point_settings_at_cluster(settings)

    async def ensure_image(name: str) -> None:
        await sync_to_async(ensure_lesson_image)(docker_client, name)

    passed = await cheat_every_step(lesson, ensure_image)
    assert passed == [], "checks a cheat passes:\n" + "\n".join(passed)
