import pytest

from sandbox.models import Sandbox
from tests.views.conftest import csrf_post

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def test_owner_stops_and_nothing_labelled_remains(client_for, owner, owners_sandbox, labelled_leftovers):
    response = csrf_post(client_for(owner), f"/sandboxes/{owners_sandbox.id}/stop/")
    assert response.status_code == 200
    assert "Start sandbox again" in response.content.decode()
    owners_sandbox.refresh_from_db()
    assert owners_sandbox.state == Sandbox.State.STOPPED
    assert labelled_leftovers(owners_sandbox.id) == []


def test_classmate_gets_403_and_the_sandbox_keeps_running(client_for, classmate, owners_sandbox):
    response = csrf_post(client_for(classmate), f"/sandboxes/{owners_sandbox.id}/stop/")
    assert response.status_code == 403
    owners_sandbox.refresh_from_db()
    assert owners_sandbox.state == Sandbox.State.RUNNING


def test_outsider_anonymous_is_sent_to_log_in(client_for, owners_sandbox):
    response = csrf_post(client_for(None), f"/sandboxes/{owners_sandbox.id}/stop/")
    assert response.status_code == 302
    owners_sandbox.refresh_from_db()
    assert owners_sandbox.state == Sandbox.State.RUNNING


def test_unknown_id_is_404(client_for, owner, unknown_sandbox_id):
    assert csrf_post(client_for(owner), f"/sandboxes/{unknown_sandbox_id}/stop/").status_code == 404
