"""The instructor role is checked on every request: a revoked instructor (group left, superuser
flag dropped) gets 404 on every page and action of the classrooms they made, as anyone else does.
An ended class keeps its results for its instructor but no longer opens learners' consoles."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from classroom import actions, permissions, roster
from classroom.models import INSTRUCTORS_GROUP, Classroom, TakeOver
from sandbox.models import Sandbox
from tests.factories import LESSON
from tests.factories import signed_in_client

pytestmark = pytest.mark.django_db

PAGES = ["", "snapshot.json", "activity.json", "insights/", "export.csv"]


@pytest.fixture
def learners_sandbox(owner):
    return Sandbox.objects.create(owner=owner, lesson=LESSON, workspace="plain", image="x", state="running")


def _revoke(instructor, how: str) -> None:
    if how == "command":
        roster.grant_instructor(instructor, revoke=True)
    elif how == "group":
        Group.objects.get(name=INSTRUCTORS_GROUP).user_set.remove(instructor)
    else:  # a superuser who made the classroom, then lost the flag
        instructor.groups.clear()
        instructor.is_superuser = True
        instructor.save()
        assert signed_in_client(instructor).get("/classrooms/").status_code == 200
        instructor.is_superuser = False
        instructor.save()


@pytest.mark.parametrize("how", ["command", "group", "superuser"])
def test_a_revoked_instructor_gets_404_on_pages_watch_and_take_control(classroom, instructor, learners_sandbox, how):
    client = signed_in_client(instructor)
    watch = f"/classrooms/{classroom.pk}/sandboxes/{learners_sandbox.id}/watch/"
    assert all(client.get(f"/classrooms/{classroom.pk}/{page}").status_code == 200 for page in PAGES)
    assert client.get(watch).status_code == 200

    _revoke(instructor, how)

    for page in PAGES:
        assert client.get(f"/classrooms/{classroom.pk}/{page}").status_code == 404, page
    assert client.get(watch).status_code == 404
    response = client.post(f"/classrooms/{classroom.pk}/sandboxes/{learners_sandbox.id}/take-control/")
    assert response.status_code == 404
    assert not TakeOver.objects.exists()
    assert client.post(f"/classrooms/{classroom.pk}/sandboxes/{learners_sandbox.id}/stop/").status_code == 404


def test_the_console_rule_follows_the_role(classroom, instructor, learners_sandbox):
    assert permissions.instructor_console_access(instructor, learners_sandbox).value == "read-only"
    roster.grant_instructor(instructor, revoke=True)
    assert permissions.instructor_console_access(instructor, learners_sandbox).value == "none"


def test_an_ended_class_keeps_its_results_but_opens_no_console(classroom, instructor, learners_sandbox):
    from asgiref.sync import async_to_sync

    client = signed_in_client(instructor)
    learners_sandbox.state = Sandbox.State.STOPPED  # nothing for stop_all to stop on an engine
    learners_sandbox.save(update_fields=["state"])
    TakeOver.objects.create(sandbox=learners_sandbox, instructor=instructor, classroom=classroom)
    async_to_sync(actions.stop_all)(classroom)

    room = Classroom.objects.get(pk=classroom.pk)
    assert room.ended_at is not None and not room.open_for_joining
    assert not TakeOver.objects.exists()
    page = client.get(f"/classrooms/{classroom.pk}/")
    assert page.status_code == 200 and "This class ended" in page.content.decode()
    assert client.get(f"/classrooms/{classroom.pk}/export.csv").status_code == 200
    assert client.get(f"/classrooms/{classroom.pk}/sandboxes/{learners_sandbox.id}/watch/").status_code == 404
    assert client.post(f"/classrooms/{classroom.pk}/sandboxes/{learners_sandbox.id}/take-control/").status_code == 404
    assert permissions.instructor_console_access(instructor, learners_sandbox).value == "none"

    # Reopened, the consoles are the instructor's to watch again.
    client.post(f"/classrooms/{classroom.pk}/settings/", {"reopen": "1"})
    assert client.get(f"/classrooms/{classroom.pk}/sandboxes/{learners_sandbox.id}/watch/").status_code == 200
