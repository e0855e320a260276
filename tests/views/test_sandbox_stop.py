import pytest

from sandbox.models import Sandbox
from tests.factories import csrf_post

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.mark.engine
def test_owner_stops_and_nothing_labelled_remains(client_for, owner, owners_sandbox, labelled_leftovers):
    response = csrf_post(client_for(owner), f"/sandboxes/{owners_sandbox.id}/stop/")
    assert response.status_code == 200
    assert "Start sandbox again" in response.content.decode()
    owners_sandbox.refresh_from_db()
    assert owners_sandbox.state == Sandbox.State.STOPPED
    assert labelled_leftovers(owners_sandbox.id) == []


def test_owner_stops_on_the_fake_backend_and_the_engine_holds_nothing(client_for, owner, fake_owners_sandbox,
                                                                      fake_backend):
    response = csrf_post(client_for(owner), f"/sandboxes/{fake_owners_sandbox.id}/stop/")
    assert response.status_code == 200
    fake_owners_sandbox.refresh_from_db()
    assert fake_owners_sandbox.state == Sandbox.State.STOPPED
    assert fake_backend.sandboxes == {}


def test_classmate_gets_403_and_the_sandbox_keeps_running(client_for, classmate, fake_owners_sandbox, fake_backend):
    response = csrf_post(client_for(classmate), f"/sandboxes/{fake_owners_sandbox.id}/stop/")
    assert response.status_code == 403
    fake_owners_sandbox.refresh_from_db()
    assert fake_owners_sandbox.state == Sandbox.State.RUNNING
    assert str(fake_owners_sandbox.id) in fake_backend.sandboxes


def test_outsider_anonymous_is_sent_to_log_in(client_for, fake_owners_sandbox, fake_backend):
    response = csrf_post(client_for(None), f"/sandboxes/{fake_owners_sandbox.id}/stop/")
    assert response.status_code == 302
    fake_owners_sandbox.refresh_from_db()
    assert fake_owners_sandbox.state == Sandbox.State.RUNNING
    assert str(fake_owners_sandbox.id) in fake_backend.sandboxes


def test_unknown_id_is_404(client_for, owner, unknown_sandbox_id):
    assert csrf_post(client_for(owner), f"/sandboxes/{unknown_sandbox_id}/stop/").status_code == 404
