"""Classroom pages: create, join (guest with a display name), roster, CSV, and the permission
matrix: only the classroom's instructor reaches its pages; owner, classmate, another classroom's
instructor and an outsider get 404; a learner sees only their own progress."""

from __future__ import annotations

import pytest

from classroom.models import Classroom, Membership
from sandbox.models import Sandbox
from tests.factories import LESSON
from tests.factories import signed_in_client

pytestmark = pytest.mark.django_db

OTHERS = ["owner", "classmate", "other_instructor", "outsider"]


def test_instructor_creates_a_classroom_and_gets_link_and_code(instructor):
    client = signed_in_client(instructor)
    response = client.post("/classrooms/", {"name": "Tuesday", "lessons": [LESSON]})
    room = Classroom.objects.get(name="Tuesday")
    assert response.url == f"/classrooms/{room.pk}/"
    page = client.get(response.url).content.decode()
    assert room.join_code in page and f"/classrooms/join/{room.join_code}/" in page
    assert 'id="dashboard-snapshot"' in page


def test_a_non_instructor_cannot_create(outsider):
    assert signed_in_client(outsider).post("/classrooms/", {"name": "x", "lessons": [LESSON]}).status_code == 404
    assert not Classroom.objects.exists()


def test_a_visitor_joins_as_a_guest_with_a_display_name(classroom):
    client = signed_in_client()
    response = client.post(f"/classrooms/join/{classroom.join_code}/", {"display_name": "  Gus   Guest "})
    member = Membership.objects.get(display_name="Gus Guest")
    assert response.url == f"/classrooms/{classroom.pk}/mine/"
    assert member.user.username.startswith("guest-") and not member.user.has_usable_password()
    assert client.get(response.url).status_code == 200


def test_join_by_code_form_and_unknown_code(classroom):
    assert signed_in_client().get("/classrooms/join/", {"code": classroom.join_code.lower()}).url == f"/classrooms/join/{classroom.join_code}/"
    assert signed_in_client().get("/classrooms/join/", {"code": "NOPE"}).status_code == 404
    assert signed_in_client().get("/classrooms/join/NOPE/").status_code == 404


@pytest.mark.parametrize("path", ["", "snapshot.json", "insights/", "export.csv"])
@pytest.mark.parametrize("who", OTHERS)
def test_classroom_pages_are_404_for_everyone_but_its_instructor(classroom, other_classroom, path, who, request, instructor):
    assert signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/{path}").status_code == 200
    assert signed_in_client(request.getfixturevalue(who)).get(f"/classrooms/{classroom.pk}/{path}").status_code == 404


@pytest.mark.parametrize("action", ["stop", "reset", "take-control", "release"])
@pytest.mark.parametrize("who", OTHERS)
def test_sandbox_actions_are_404_for_others(classroom, other_classroom, owner, action, who, request):
    sandbox = Sandbox.objects.create(owner=owner, lesson=LESSON, workspace="plain", image="x", state="running")
    response = signed_in_client(request.getfixturevalue(who)).post(f"/classrooms/{classroom.pk}/sandboxes/{sandbox.id}/{action}/")
    assert response.status_code == 404
    assert Sandbox.objects.get(pk=sandbox.pk).state == "running"


def test_instructor_cannot_act_on_another_classrooms_learner(classroom, other_classroom, outsider, instructor):
    sandbox = Sandbox.objects.create(owner=outsider, lesson=LESSON, workspace="plain", image="x", state="running")
    assert signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/sandboxes/{sandbox.id}/watch/").status_code == 404
    assert signed_in_client(instructor).post(f"/classrooms/{classroom.pk}/sandboxes/{sandbox.id}/stop/").status_code == 404


@pytest.mark.parametrize("who", ["classmate", "other_instructor", "outsider"])
def test_learner_page_shows_only_members_their_own_work(classroom, other_classroom, owner, who, request):
    assert signed_in_client(owner).get(f"/classrooms/{classroom.pk}/mine/").status_code == 200
    status = signed_in_client(request.getfixturevalue(who)).get(f"/classrooms/{classroom.pk}/mine/").status_code
    assert status == (200 if who == "classmate" else 404)
    page = signed_in_client(owner).get(f"/classrooms/{classroom.pk}/mine/").content.decode()
    assert "Cleo Classmate" not in page


def test_roster_remove_and_rename(classroom, classmate, instructor, other_instructor):
    member = classroom.memberships.get(user=classmate)
    assert signed_in_client(other_instructor).post(f"/classrooms/{classroom.pk}/members/{member.pk}/remove/").status_code == 404
    signed_in_client(instructor).post(f"/classrooms/{classroom.pk}/members/{member.pk}/rename/", {"display_name": "Cleo C."})
    assert Membership.objects.get(pk=member.pk).display_name == "Cleo C."
    signed_in_client(instructor).post(f"/classrooms/{classroom.pk}/members/{member.pk}/remove/")
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_broadcast_refuses_an_empty_message(classroom, instructor):
    response = signed_in_client(instructor).post(f"/classrooms/{classroom.pk}/broadcast/", {"message": "  "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "Write a message" in response.content.decode()


def test_csv_export_is_an_attachment(classroom, instructor):
    response = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert response.content.decode().splitlines()[0].startswith("learner,username,lesson,step")
