"""Abuse limits a script would hit: guests per address (and guests off), joins per address,
sandbox actions and checks per learner, sandboxes held per client address, and the removal of
old unused guests. Each limit is a setting; the counters live in Django's cache."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts import limits
from accounts.guests import remove_old_guests
from classroom.models import Membership
from lessons.catalogue import get_lesson
from lessons.models import StepProgress
from sandbox.models import Sandbox
from tests.factories import LESSON, signed_in_client

pytestmark = pytest.mark.django_db
User = get_user_model()


def _guests() -> int:
    return User.objects.filter(username__startswith="guest-").count()


def test_guests_per_address_are_limited_and_another_address_is_not(settings):
    settings.RATE_GUESTS_PER_ADDRESS = "3/h"
    answers = [signed_in_client().post("/accounts/guest/", {"next": "/"}).status_code for _ in range(5)]
    assert answers == [302, 302, 302, 429, 429]
    assert _guests() == 3
    assert signed_in_client().post("/accounts/guest/", REMOTE_ADDR="10.1.2.3").status_code == 302
    assert _guests() == 4


def test_guests_can_be_turned_off(settings):
    settings.GUESTS_ENABLED = False
    response = signed_in_client().post("/accounts/guest/")
    assert response.status_code == 403 and "turned off" in response.content.decode()
    assert _guests() == 0
    assert "Continue as guest" not in signed_in_client().get("/accounts/login/").content.decode()


def test_joining_as_a_guest_obeys_the_guest_limit_and_the_join_limit(classroom, settings):
    settings.RATE_GUESTS_PER_ADDRESS = "100/h"
    settings.RATE_JOINS_PER_ADDRESS = "4/h"
    url = f"/classrooms/join/{classroom.join_code}/"
    answers = [signed_in_client().post(url, {"display_name": f"bot {n}"}).status_code for n in range(6)]
    assert answers == [302, 302, 302, 302, 429, 429]
    assert Membership.objects.filter(display_name__startswith="bot").count() == 4
    assert _guests() == 4  # a refused join makes no guest either


def test_joining_without_guests_asks_to_log_in(classroom, settings, outsider):
    settings.GUESTS_ENABLED = False
    url = f"/classrooms/join/{classroom.join_code}/"
    response = signed_in_client().post(url, {"display_name": "Visitor"})
    assert response.status_code == 403 and "log in" in response.content.decode().lower()
    assert _guests() == 0
    assert signed_in_client(outsider).post(url, {"display_name": "Otto"}).status_code == 302


def test_sandbox_actions_per_learner_are_limited(owner, settings):
    """Restart of a sandbox that already runs touches no engine: the limit is what is measured."""
    settings.RATE_SANDBOX_ACTIONS = "5/m"
    sandbox = Sandbox.objects.create(owner=owner, lesson=LESSON, workspace="plain", image="x", state="running")
    client = signed_in_client(owner)
    answers = [client.post(f"/sandboxes/{sandbox.id}/restart/", HTTP_HX_REQUEST="true") for _ in range(7)]
    assert ["Too many sandbox actions" in a.content.decode() for a in answers] == [False] * 5 + [True] * 2
    plain = client.post(f"/sandboxes/{sandbox.id}/restart/")
    assert plain.status_code == 429 and int(plain["Retry-After"]) > 0


def test_checks_per_learner_are_limited(owner, settings):
    settings.RATE_CHECKS = "3/m"
    step = get_lesson(LESSON).steps[0]
    client = signed_in_client(owner)
    url = f"/lessons/{LESSON}/steps/{step.slug}/check/"
    answers = [client.post(url, HTTP_HX_REQUEST="true").content.decode() for _ in range(5)]
    assert ["Too many checks" in a for a in answers] == [False, False, False, True, True]
    from lessons.models import CheckAttempt

    assert CheckAttempt.objects.filter(progress__user=owner).count() == 3  # refused ones run and record nothing


def test_sandboxes_held_per_client_address_are_limited(settings, base_image_free_capacity_zero):
    """A script making guests from one address cannot take the class's places: past
    SANDBOXES_PER_ADDRESS its guests' starts are refused (capacity 0 here: every start queues,
    so no engine is needed and each queued row counts as held)."""
    settings.SANDBOXES_PER_ADDRESS = 3
    refused = 0
    for _ in range(5):
        client = signed_in_client()
        client.post("/accounts/guest/")
        body = client.post(f"/sandboxes/start/{LESSON}/", HTTP_HX_REQUEST="true").content.decode()
        refused += "from your network address" in body
    assert Sandbox.objects.filter(state=Sandbox.State.QUEUED).count() == 3 and refused == 2
    other = signed_in_client()
    other.post("/accounts/guest/", REMOTE_ADDR="10.9.9.9")
    other.post(f"/sandboxes/start/{LESSON}/", HTTP_HX_REQUEST="true", REMOTE_ADDR="10.9.9.9")
    assert Sandbox.objects.filter(state=Sandbox.State.QUEUED).count() == 4


@pytest.fixture
def base_image_free_capacity_zero(settings):
    settings.SANDBOX_CAPACITY = 0
    settings.RATE_GUESTS_PER_ADDRESS = "off"


def test_old_unused_guests_are_removed_and_the_rest_kept(classroom, owner, settings):
    now = timezone.now()
    settings.GUEST_MAX_AGE_SECONDS = 14 * 86400
    settings.GUEST_UNUSED_SECONDS = 86400

    def guest(name, joined_days_ago, last_login_days_ago=None):
        user = User.objects.create_user(username=f"guest-{name}")
        user.set_unusable_password()
        user.date_joined = now - dt.timedelta(days=joined_days_ago)
        user.last_login = now - dt.timedelta(days=last_login_days_ago) if last_login_days_ago is not None else None
        user.save()
        return user

    unused_old = guest("unused-old", 2)
    guest("unused-new", 0)
    with_progress = guest("progress", 2, 1)
    StepProgress.objects.create(user=with_progress, lesson=LESSON, step=get_lesson(LESSON).steps[0].slug)
    gone_long_ago = guest("gone", 30, 20)
    StepProgress.objects.create(user=gone_long_ago, lesson=LESSON, step=get_lesson(LESSON).steps[0].slug)
    member = guest("member", 30, 20)
    Membership.objects.create(classroom=classroom, user=member, display_name="Mia")
    running = guest("running", 30, 20)
    Sandbox.objects.create(owner=running, lesson=LESSON, workspace="plain", image="x", state="running")
    old_account = User.objects.create_user(username="guest-like", password="a real password 123")
    User.objects.filter(pk=old_account.pk).update(date_joined=now - dt.timedelta(days=60))

    assert remove_old_guests(now) == 2
    left = set(User.objects.filter(username__startswith="guest").values_list("username", flat=True))
    assert left == {"guest-unused-new", "guest-progress", "guest-member", "guest-running", "guest-like"}
    assert not User.objects.filter(pk=unused_old.pk).exists()


def test_rates_are_checked_when_read():
    assert limits.parse_rate("10/h") == limits.Rate(10, 3600)
    assert limits.parse_rate("5/10m") == limits.Rate(5, 600)
    assert limits.parse_rate("off") is None and limits.parse_rate("0") is None
    with pytest.raises(ValueError):
        limits.parse_rate("10 per hour")


def test_a_rate_counts_per_key_and_says_how_long_to_wait():
    assert [limits.hit("t", "k", "2/m").limited for _ in range(3)] == [False, False, True]
    assert 1 <= limits.hit("t", "k", "2/m").retry_after <= 60
    assert limits.hit("t", "another key", "2/m").limited is False
    assert limits.hit("another scope", "k", "2/m").limited is False


def test_an_ipv6_client_counts_as_its_64(rf):
    one = rf.get("/", REMOTE_ADDR="2001:db8:1:2::10")
    two = rf.get("/", REMOTE_ADDR="2001:db8:1:2:ffff::1")
    assert limits.client_address(one) == limits.client_address(two) == "2001:db8:1:2::/64"
    assert limits.client_address(rf.get("/", REMOTE_ADDR="::ffff:10.0.0.1")) == "10.0.0.1"
