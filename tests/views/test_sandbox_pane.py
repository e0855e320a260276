import pytest

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_owner_sees_the_terminal_pane(client_for, owner, fake_owners_sandbox):
    response = client_for(owner).get(f"/sandboxes/{fake_owners_sandbox.id}/pane/")
    assert response.status_code == 200
    assert f"/ws/sandboxes/{fake_owners_sandbox.id}/console/" in response.content.decode()


def test_classmate_gets_403(client_for, classmate, fake_owners_sandbox):
    assert client_for(classmate).get(f"/sandboxes/{fake_owners_sandbox.id}/pane/").status_code == 403


def test_anonymous_is_sent_to_log_in(client_for, fake_owners_sandbox):
    assert client_for(None).get(f"/sandboxes/{fake_owners_sandbox.id}/pane/").status_code == 302


def test_unknown_id_is_404(client_for, owner, unknown_sandbox_id):
    assert client_for(owner).get(f"/sandboxes/{unknown_sandbox_id}/pane/").status_code == 404
