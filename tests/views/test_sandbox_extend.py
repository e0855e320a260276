"""The pane's lifecycle parts over HTTP: time left and Extend, the queue position instead of a bare
"out of capacity", and kept files after a stop."""

import re

import pytest
from asgiref.sync import async_to_sync

from sandbox import services
from sandbox.models import Sandbox
from tests.factories import LESSON, csrf_post

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_running_pane_shows_time_left_and_extend_adds_time(client_for, owner, fake_owners_sandbox, settings):
    settings.SANDBOX_EXTEND_SECONDS, settings.SANDBOX_MAX_EXTENSIONS = 600, 1
    client = client_for(owner)
    pane = client.get(f"/sandboxes/{fake_owners_sandbox.id}/pane/").content.decode()
    assert 'id="sandbox-timer"' in pane and "min left" in pane and "data-extend" in pane
    assert "idle stop in" in pane  # both clocks: the session's end and the idle stop
    before = fake_owners_sandbox.expires_at
    session_before = int(re.search(r'data-session-left="(\d+)"', pane).group(1))

    answer = csrf_post(client, f"/sandboxes/{fake_owners_sandbox.id}/extend/").content.decode()
    fake_owners_sandbox.refresh_from_db()
    assert (fake_owners_sandbox.expires_at - before).total_seconds() == pytest.approx(600, abs=1)
    assert "data-extend" not in answer  # that was the only extension
    # The answer shows the new session end and says what changed.
    session_after = int(re.search(r'data-session-left="(\d+)"', answer).group(1))
    assert session_after - session_before == pytest.approx(600, abs=3)
    assert 'role="status"' in answer and "Extended by 10 minutes." in answer

    refused = csrf_post(client, f"/sandboxes/{fake_owners_sandbox.id}/extend/").content.decode()
    assert "cannot be extended any further" in refused


def test_classmate_cannot_extend(client_for, classmate, fake_owners_sandbox):
    assert csrf_post(client_for(classmate), f"/sandboxes/{fake_owners_sandbox.id}/extend/").status_code == 403


def test_past_capacity_the_page_shows_a_queue_position(client_for, owner, classmate, fake_owners_sandbox, settings):
    settings.SANDBOX_CAPACITY = 1
    page = csrf_post(client_for(classmate), f"/sandboxes/start/{LESSON}/").content.decode()
    assert "number 1 in the queue" in page and "data-console-url" in page  # the console waits for it
    queued = Sandbox.objects.get(owner=classmate)
    assert queued.state == Sandbox.State.QUEUED
    left = csrf_post(client_for(classmate), f"/sandboxes/{queued.id}/stop/")
    assert left.status_code == 200
    queued.refresh_from_db()
    assert queued.state == Sandbox.State.STOPPED


@pytest.mark.engine
def test_a_stopped_pane_says_the_files_are_kept(client_for, owner, owners_sandbox):
    async_to_sync(services.stop_sandbox)(owners_sandbox)
    pane = client_for(owner).get(f"/sandboxes/{owners_sandbox.id}/pane/").content.decode()
    assert "Your files are kept" in pane and "Start sandbox again" in pane
