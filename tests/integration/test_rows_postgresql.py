"""On PostgreSQL (as on a cluster) the rows read with SQL made once (tutorial/rows.py, the session
store, the user of a session, the classrooms a learner's events go to) are what the ORM reads: native UUIDs and
timezone-aware dates included. Under CI a PostgreSQL that cannot be started is a failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .classroom_services import REPO, postgres_database_url  # noqa: F401 - a fixture

COMPARE = """
import datetime as dt, json, uuid
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone
from accounts.backends import ModelBackend
from accounts.sessions import SessionStore
from classroom.models import AssignedLesson, Classroom, Membership
from classroom.signals import classrooms_watching
from sandbox.models import Sandbox, read_sandbox

def fields_of(instance):
    return {f.attname: str(getattr(instance, f.attname)) for f in type(instance)._meta.concrete_fields}

owner = get_user_model().objects.create_user("reader")
now = timezone.now()
made = Sandbox.objects.create(owner=owner, lesson="first", workspace="plain", image="tutorial/base",
                              state="running", started_at=now, expires_at=now + dt.timedelta(hours=1))
store = SessionStore()
store["seen"] = 42
store.save()
expired = SessionStore()
expired["seen"] = 1
expired.save()
Session.objects.filter(session_key=expired.session_key).update(expire_date=now - dt.timedelta(seconds=1))
room = Classroom.objects.create(name="a", instructor=get_user_model().objects.create_user("teacher"))
AssignedLesson.objects.create(classroom=room, lesson="first")
Membership.objects.create(classroom=room, user=owner, display_name="Lena")
fast = read_sandbox(str(made.pk))
print(json.dumps({
    "same": fields_of(fast) == fields_of(Sandbox.objects.get(pk=made.pk)),
    "aware": fast.started_at.tzinfo is not None and fast.started_at == now,
    "uuid": isinstance(fast.id, uuid.UUID),
    "missing": read_sandbox(uuid.uuid4()) is None,
    "session": SessionStore(store.session_key).load(),
    "expired": SessionStore(expired.session_key).load(),
    "watching": classrooms_watching(owner.pk, "first") == [room.pk],
    "user": fields_of(ModelBackend().get_user(str(owner.pk))) == fields_of(owner),
    "vendor": __import__("django.db").db.connection.vendor,
}))
"""


@pytest.fixture
def database_url(postgres_database_url):
    return postgres_database_url


def test_rows_read_without_the_orm_are_the_orms_rows_on_postgresql(database_url, tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", COMPARE], cwd=REPO, capture_output=True, text=True, timeout=170,
        env={**os.environ, "DATABASE_URL": database_url, "TUTORIAL_DATA_DIR": str(tmp_path), "DJANGO_DEBUG": "0",
             "DJANGO_SECRET_KEY": "test-only-" + "k" * 50})
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"same": True, "aware": True, "uuid": True, "missing": True, "session": {"seen": 42},
                     "expired": {}, "watching": True, "user": True, "vendor": "postgresql"}
