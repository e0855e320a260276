"""Reset is not a way past the learner's limit or the queue: a stopped sandbox reset at the limit
is refused, a queued one stays in the queue, a second Restart of one sandbox starts nothing more.

The real engine is there (a reset that slipped past the limit would make a real container, which
the test would then find and remove); with the rule kept, none is made."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from sandbox import services
from sandbox.models import Sandbox
from tests.factories import LESSON, csrf_post, signed_in_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def _row(owner, lesson, state):
    return Sandbox.objects.create(owner=owner, lesson=lesson, workspace="plain", image="tutorial/base:latest", state=state)


@pytest.fixture
def cleanup_containers(labelled_leftovers):
    made: list[Sandbox] = []
    yield made
    for sandbox in Sandbox.objects.filter(pk__in=[s.pk for s in made]):
        if labelled_leftovers(sandbox.id):
            async_to_sync(services.get_backend("plain").destroy)(str(sandbox.id))


def test_reset_of_a_stopped_sandbox_at_the_limit_is_refused(client_for, owner, settings, base_image, cleanup_containers,
                                                           labelled_leftovers):
    settings.SANDBOXES_PER_USER = 2
    _row(owner, "big-picture", Sandbox.State.RUNNING)
    _row(owner, "images", Sandbox.State.RUNNING)
    stopped = _row(owner, LESSON, Sandbox.State.STOPPED)
    cleanup_containers.append(stopped)
    response = csrf_post(client_for(owner), f"/sandboxes/{stopped.id}/reset/")
    assert "stop one to start another" in response.content.decode()
    stopped.refresh_from_db()
    assert stopped.state == Sandbox.State.STOPPED
    assert labelled_leftovers(stopped.id) == []  # nothing was made on the engine
    assert Sandbox.objects.filter(owner=owner, state__in=Sandbox.HELD_STATES).count() == 2


def test_reset_of_a_queued_sandbox_keeps_its_place_in_the_queue(client_for, owner, classmate, settings, base_image,
                                                                cleanup_containers, labelled_leftovers):
    settings.SANDBOX_CAPACITY = 1
    _row(classmate, LESSON, Sandbox.State.RUNNING)  # the class is full
    queued = _row(owner, LESSON, Sandbox.State.QUEUED)
    cleanup_containers.append(queued)
    csrf_post(client_for(owner), f"/sandboxes/{queued.id}/reset/")
    queued.refresh_from_db()
    assert queued.state == Sandbox.State.QUEUED
    assert labelled_leftovers(queued.id) == []


def test_restart_of_a_sandbox_that_already_runs_starts_nothing(client_for, owner, owners_sandbox, labelled_leftovers):
    ref = owners_sandbox.engine_ref
    csrf_post(client_for(owner), f"/sandboxes/{owners_sandbox.id}/restart/")
    owners_sandbox.refresh_from_db()
    assert owners_sandbox.state == Sandbox.State.RUNNING and owners_sandbox.engine_ref == ref


def test_an_instructors_reset_at_the_learners_limit_says_why_instead_of_failing(settings, owner, classroom, instructor,
                                                                               cleanup_containers, labelled_leftovers):
    settings.SANDBOXES_PER_USER = 2
    _row(owner, "big-picture", Sandbox.State.RUNNING)
    _row(owner, "images", Sandbox.State.RUNNING)
    stopped = _row(owner, LESSON, Sandbox.State.STOPPED)
    cleanup_containers.append(stopped)
    response = signed_in_client(instructor).post(f"/classrooms/{classroom.pk}/sandboxes/{stopped.id}/reset/",
                                                 HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "stop one to start another" in response.content.decode()
    stopped.refresh_from_db()
    assert stopped.state == Sandbox.State.STOPPED and labelled_leftovers(stopped.id) == []
