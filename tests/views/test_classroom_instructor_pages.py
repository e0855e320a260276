"""The instructor's pages: a Check with no sandbox is no failure on the dashboard, learners are
named by their display names (never a guest's generated username), destructive actions ask first,
the projector page shows the join code large with a QR code of the join link, and the pages are
in Chinese for a Chinese reader."""

from __future__ import annotations

import json
import re

import pytest
import segno
from django.contrib.auth import get_user_model

from classroom import actions, roster
from classroom.models import Membership
from lessons.catalogue import get_lesson
from sandbox.models import Sandbox
from tests.factories import LESSON
from tests.factories import signed_in_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def guest_member(classroom):
    guest = get_user_model().objects.create_user(username="guest-q8z3k7")
    guest.set_unusable_password()
    guest.save()
    roster.join(classroom, guest, "Gus Guest")
    return guest


def _chinese(user):
    client = signed_in_client(user)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    return client


def test_a_check_pressed_with_no_sandbox_tells_the_learner_but_is_no_failure_for_the_instructor(classroom, owner, instructor):
    step = get_lesson(LESSON).steps[0]
    html = signed_in_client(owner).post(f"/lessons/{LESSON}/steps/{step.slug}/check/").content.decode()
    assert "not running" in html
    snapshot = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/snapshot.json").json()
    cell = snapshot["cells"][f"{owner.pk}:{LESSON}:{step.slug}"]
    assert cell["failures"] == 0 and cell["attempts"] == 0
    csv_row = [r for r in signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/export.csv").content.decode().splitlines()
               if step.slug in r][0]
    assert csv_row.split(",")[6:8] == ["0", "0"]


def test_roster_shows_a_guests_display_name_not_their_generated_username(classroom, guest_member, instructor):
    page = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/").content.decode()
    assert "Gus Guest" in page and "guest-q8z3k7" not in page
    assert "owner" in page  # a real account's username still helps tell two people apart


@pytest.mark.parametrize("action, said", [("stop", "Stopped the sandbox of Gus Guest."), ("reset", "Reset the sandbox of Gus Guest.")])
def test_sandbox_action_messages_name_the_learner_by_display_name(classroom, guest_member, instructor, monkeypatch, action, said):
    async def nothing(sandbox):
        return None

    monkeypatch.setattr(actions, "stop_learner_sandbox", nothing)
    monkeypatch.setattr(actions, "reset_learner_sandbox", nothing)
    sandbox = Sandbox.objects.create(owner=guest_member, lesson=LESSON, workspace="plain", image="x", state="running")
    response = signed_in_client(instructor).post(f"/classrooms/{classroom.pk}/sandboxes/{sandbox.id}/{action}/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert said in body and "guest-" not in body


def test_removing_learners_names_them(classroom, guest_member, classmate, instructor):
    client = signed_in_client(instructor)
    gus = Membership.objects.get(user=guest_member)
    page = client.post(f"/classrooms/{classroom.pk}/members/{gus.pk}/remove/", follow=True).content.decode()
    assert "Removed Gus Guest from the class." in page and "guest-q8z3k7" not in page
    cleo = Membership.objects.get(user=classmate)
    page = client.post(f"/classrooms/{classroom.pk}/members/remove/", {"members": [cleo.pk]}, follow=True).content.decode()
    assert "Removed 1 learner: Cleo Classmate." in page


def test_watch_page_names_the_learner_by_display_name(classroom, guest_member, instructor):
    sandbox = Sandbox.objects.create(owner=guest_member, lesson=LESSON, workspace="plain", image="x", state="running")
    page = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/sandboxes/{sandbox.id}/watch/").content.decode()
    assert "Gus Guest" in page and "guest-q8z3k7" not in page


def test_destructive_actions_ask_first(classroom, instructor):
    page = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/").content.decode()
    member = Membership.objects.get(classroom=classroom, display_name="Olive Owner")
    remove = re.search(rf'<form[^>]*action="/classrooms/{classroom.pk}/members/{member.pk}/remove/"[^>]*>', page).group(0)
    assert 'data-confirm="Remove Olive Owner from the class?' in remove
    bulk = re.search(r'<form[^>]*id="bulk-remove"[^>]*>', page).group(0)
    assert "data-confirm=" in bulk
    end = re.search(r'<form[^>]*stop-all[^>]*>', page).group(0)
    assert 'hx-confirm="End the class?' in end
    words = json.loads(re.search(r'<script id="dashboard-words" type="application/json">(.*?)</script>', page).group(1))
    assert words["confirmStop"].startswith("Stop the sandbox of {name}?")
    assert words["confirmReset"].startswith("Reset the sandbox of {name}?")


def test_confirmations_and_dashboard_are_in_chinese(classroom, instructor):
    page = _chinese(instructor).get(f"/classrooms/{classroom.pk}/").content.decode()
    assert "将 Olive Owner 移出课堂？" in page and "结束课堂" in page and "学员" in page
    words = json.loads(re.search(r'<script id="dashboard-words" type="application/json">(.*?)</script>', page).group(1))
    assert "{name}" in words["confirmStop"] and "停止" in words["confirmStop"]
    assert "Remove Olive Owner" not in page and "Class actions" not in page and ">Extend<" not in page


def test_insights_are_in_chinese(classroom, instructor):
    page = _chinese(instructor).get(f"/classrooms/{classroom.pk}/insights/").content.decode()
    assert "最常见的失败反馈" in page and "Most common failing feedback" not in page


def test_the_dashboard_links_the_projector_view(classroom, instructor):
    page = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/").content.decode()
    assert f'href="/classrooms/{classroom.pk}/projector/"' in page


def test_projector_view_shows_the_code_large_and_a_qr_code_of_the_join_link(classroom, instructor):
    page = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/projector/").content.decode()
    code = classroom.join_code
    assert f"{code[:4]} {code[4:]}" in page
    join_url = f"http://testserver/classrooms/join/{code}/"
    assert join_url in page
    svg = re.search(r"<svg[^>]*class=\"qr-code\".*?</svg>", page, re.S).group(0)
    # The QR code is the join link's, module for module.
    expected = segno.make(join_url, error="m")
    assert re.search(r'd="([^"]+)"', svg.split('class="qrline"')[1]).group(1) == \
        re.search(r'd="([^"]+)"', expected.svg_inline(scale=10, border=2).split('class="qrline"')[1]).group(1)


@pytest.mark.parametrize("who", ["owner", "classmate", "other_instructor", "outsider"])
def test_projector_view_is_404_for_everyone_but_the_instructor(classroom, other_classroom, who, request):
    assert signed_in_client(request.getfixturevalue(who)).get(f"/classrooms/{classroom.pk}/projector/").status_code == 404


def test_projector_view_in_chinese(classroom, instructor):
    page = _chinese(instructor).get(f"/classrooms/{classroom.pk}/projector/").content.decode()
    assert "扫描二维码" in page and "scan the QR code" not in page


def test_a_signed_in_guest_is_not_offered_their_generated_username_as_a_name(classroom, other_classroom):
    guest = get_user_model().objects.create_user(username="guest-m4n8p2")
    guest.set_unusable_password()
    guest.save()
    client = signed_in_client(guest)
    page = client.get(f"/classrooms/join/{classroom.join_code}/").content.decode()
    assert re.search(r"<input name=\"display_name\"[^>]*value=\"\"", page)  # not their guest-… username
    response = client.post(f"/classrooms/join/{classroom.join_code}/", {"display_name": ""})
    assert response.status_code == 400 and not Membership.objects.filter(user=guest).exists()
    roster.join(other_classroom, guest, "Gina")
    assert 'value="Gina"' in client.get(f"/classrooms/join/{classroom.join_code}/").content.decode()


def test_join_page_in_chinese(classroom, outsider):
    page = _chinese(outsider).get(f"/classrooms/join/{classroom.join_code}/").content.decode()
    assert "讲师将看到" in page and "as your instructor will see it" not in page
