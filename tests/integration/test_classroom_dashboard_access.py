"""An open instructor dashboard hears when its instructor's access changes, however it changes:
revoked (``grant_instructor --revoke``, the admin's group page, a superuser flag) it closes with
4403; the class ended, it closes with 4409; a learner removed or a lesson unassigned, it is told
to re-read its roster and stays open. Through the real ASGI app (origin check, session) and the
real channel layer."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.test import Client

from classroom import actions, roster
from classroom.models import INSTRUCTORS_GROUP, Membership
from sandbox import protocol
from tests.factories import LESSON
from tests.websockets import closed_with

pytestmark = pytest.mark.django_db(transaction=True)

OTHER_LESSON = "big-picture"


async def _open(dashboard, classroom_id, user):
    ws = await dashboard(classroom_id, user)
    connected, _ = await ws.connect()
    assert connected
    assert json.loads(await ws.receive_from(timeout=5)) == {"kind": "hello", "classroom": classroom_id}
    return ws


def _get_as(user, url):
    client = Client()
    client.force_login(user)
    return client.get(url)


def _revoke_with_the_command(user):
    roster.grant_instructor(user, revoke=True)


def _revoke_from_the_groups_page(user):
    Group.objects.get(name=INSTRUCTORS_GROUP).user_set.remove(user)


def _clear_the_group(user):
    Group.objects.get(name=INSTRUCTORS_GROUP).user_set.clear()


def _deactivate(user):
    user.is_active = False
    user.save(update_fields=["is_active"])


@pytest.mark.parametrize("revoke", [_revoke_with_the_command, _revoke_from_the_groups_page, _clear_the_group, _deactivate])
async def test_revoking_the_instructor_closes_their_open_dashboard(dashboard, classroom, instructor, revoke):
    ws = await _open(dashboard, classroom.pk, instructor)
    await sync_to_async(revoke)(instructor)
    await closed_with(ws, protocol.CLOSE_NOT_YOURS)
    # And a new one is refused (a deactivated user's session no longer signs them in).
    again = await dashboard(classroom.pk, instructor)
    await again.connect()
    await closed_with(again, protocol.CLOSE_NOT_YOURS, protocol.CLOSE_NOT_SIGNED_IN)


async def test_a_superuser_no_longer_superuser_loses_the_dashboard(dashboard):
    from tests.factories import make_user

    chief = await sync_to_async(make_user)("chief")
    chief.is_superuser = True
    await chief.asave()
    room = await sync_to_async(roster.create_classroom)(chief, "Chief's class", [LESSON])
    ws = await _open(dashboard, room.pk, chief)
    chief.is_superuser = False
    await chief.asave()
    await closed_with(ws, protocol.CLOSE_NOT_YOURS)


async def test_ending_the_class_closes_the_dashboard_and_keeps_the_results(dashboard, classroom, instructor):
    ws = await _open(dashboard, classroom.pk, instructor)
    assert await actions.stop_all(classroom) == 0
    seen = await closed_with(ws, protocol.CLOSE_NOT_RUNNING)
    assert {"kind": "ended", "classroom": classroom.pk} in seen
    again = await dashboard(classroom.pk, instructor)
    await again.connect()
    await closed_with(again, protocol.CLOSE_NOT_RUNNING)
    # The results stay for the instructor.
    page = await sync_to_async(_get_as)(instructor, f"/classrooms/{classroom.pk}/")
    assert page.status_code == 200 and "This class ended" in page.content.decode()


async def test_deleting_the_classroom_closes_its_dashboard(dashboard, classroom, instructor):
    ws = await _open(dashboard, classroom.pk, instructor)
    await classroom.adelete()
    await closed_with(ws, protocol.CLOSE_NOT_YOURS)


async def test_removing_a_learner_or_unassigning_a_lesson_refreshes_the_roster_and_stays_open(
    dashboard, classroom, instructor, classmate
):
    await sync_to_async(roster.set_lessons)(classroom, [LESSON, OTHER_LESSON])
    ws = await _open(dashboard, classroom.pk, instructor)
    membership = await Membership.objects.aget(classroom=classroom, user=classmate)
    await sync_to_async(roster.remove_member)(classroom, membership.pk)
    assert json.loads(await ws.receive_from(timeout=5))["kind"] == "roster"
    await sync_to_async(roster.set_lessons)(classroom, [LESSON])
    assert json.loads(await ws.receive_from(timeout=5))["kind"] == "roster"
    assert await ws.receive_nothing(timeout=0.3)  # still open: the instructor still teaches it
    await ws.disconnect()


async def test_another_instructors_revocation_leaves_this_dashboard_alone(
    dashboard, classroom, other_classroom, instructor, other_instructor
):
    mine = await _open(dashboard, classroom.pk, instructor)
    theirs = await _open(dashboard, other_classroom.pk, other_instructor)
    await sync_to_async(_revoke_with_the_command)(other_instructor)
    await closed_with(theirs, protocol.CLOSE_NOT_YOURS)
    assert await mine.receive_nothing(timeout=0.3)
    await mine.disconnect()
