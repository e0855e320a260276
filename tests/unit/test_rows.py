"""tutorial.rows.fetch_one reads what the ORM reads: same instance, same values, same misses."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.sessions import SessionStore
from classroom.models import AssignedLesson, Classroom, Membership
from classroom.signals import classrooms_watching
from sandbox.models import Sandbox, read_sandbox
from tutorial.rows import fetch_one

pytestmark = pytest.mark.django_db


def fields_of(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_a_sandbox_row_is_the_one_the_orm_reads_nulls_dates_and_uuid_included():
    owner = get_user_model().objects.create_user("reader")
    now = timezone.now()
    made = Sandbox.objects.create(owner=owner, lesson="first", workspace="plain", image="tutorial/base",
                                  state=Sandbox.State.RUNNING, started_at=now, expires_at=now + dt.timedelta(hours=1))
    orm = Sandbox.objects.get(pk=made.pk)
    fast = read_sandbox(made.pk)
    assert isinstance(fast, Sandbox) and fast.pk == made.pk
    assert fields_of(fast) == fields_of(orm)
    assert fast.stopped_at is None and fast.started_at == now and fast.started_at.tzinfo is not None
    assert isinstance(fast.id, uuid.UUID) and not fast._state.adding and fast._state.db == "default"
    assert read_sandbox(str(made.pk)).pk == made.pk  # the id as the URL gives it
    fast.state = Sandbox.State.STOPPED
    fast.save(update_fields=["state"])  # an instance the ORM can save
    assert Sandbox.objects.get(pk=made.pk).state == Sandbox.State.STOPPED


def test_no_row_is_none():
    assert read_sandbox(uuid.uuid4()) is None


def test_a_session_is_read_until_it_expires_and_not_after():
    store = SessionStore()
    store["seen"] = 42
    store.save()
    assert SessionStore(store.session_key).load() == {"seen": 42}
    Session.objects.filter(session_key=store.session_key).update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    expired = SessionStore(store.session_key)
    assert expired.load() == {}
    assert expired.session_key is None  # as Django's store: an expired key is dropped, a new one made on save
    assert SessionStore("no-such-session-key").load() == {}


def test_only_the_two_operators_it_knows():
    with pytest.raises(ValueError, match="operator"):
        fetch_one(Sandbox, (("pk", "<>"),), (uuid.uuid4(),))


def test_the_classrooms_watching_a_learner_are_those_with_the_lesson_assigned():
    users = get_user_model().objects
    teacher, learner, other = users.create_user("teacher"), users.create_user("learner"), users.create_user("other")
    assigned, unassigned, not_joined = (Classroom.objects.create(name=name, instructor=teacher) for name in "abc")
    for room in (assigned, not_joined):
        AssignedLesson.objects.create(classroom=room, lesson="first")
    AssignedLesson.objects.create(classroom=unassigned, lesson="second")
    for room in (assigned, unassigned):
        Membership.objects.create(classroom=room, user=learner, display_name="Lena")
    Membership.objects.create(classroom=not_joined, user=other, display_name="Otto")
    assert classrooms_watching(learner.pk, "first") == [assigned.pk]
    assert classrooms_watching(learner.pk, "second") == [unassigned.pk]
    assert classrooms_watching(learner.pk, "third") == []


def test_the_user_of_a_session_is_loaded_by_this_backend_and_an_inactive_one_is_nobody():
    from accounts.backends import ModelBackend

    user = get_user_model().objects.create_user("signed-in", password="pw-long-enough-1")
    backend = ModelBackend()
    loaded = backend.get_user(str(user.pk))  # as the session keeps it
    assert fields_of(loaded) == fields_of(get_user_model().objects.get(pk=user.pk))
    assert backend.get_user(str(user.pk + 1000)) is None
    user.is_active = False
    user.save()
    assert backend.get_user(str(user.pk)) is None


def test_a_wrong_password_is_checked_once_not_again_by_djangos_own_backend(monkeypatch):
    from django.contrib.auth import authenticate
    from django.contrib.auth.backends import ModelBackend as DjangosModelBackend

    get_user_model().objects.create_user("checked", password="pw-long-enough-1")
    tries = []
    original = DjangosModelBackend.authenticate

    def counted(self, *args, **kwargs):
        tries.append(type(self).__module__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DjangosModelBackend, "authenticate", counted)
    assert authenticate(None, username="checked", password="wrong") is None
    assert tries == ["accounts.backends"]
    tries.clear()
    assert authenticate(None, username="checked", password="pw-long-enough-1").backend == "accounts.backends.ModelBackend"
    assert tries == ["accounts.backends"]


def test_a_session_made_before_names_djangos_backend_and_still_signs_in(client):
    from django.contrib.auth import BACKEND_SESSION_KEY

    user = get_user_model().objects.create_user("older", password="pw-long-enough-1")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.session[BACKEND_SESSION_KEY] == "django.contrib.auth.backends.ModelBackend"
    assert client.get("/").wsgi_request.user == user
