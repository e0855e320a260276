import pytest
from asgiref.sync import async_to_sync

from sandbox import services
from sandbox.models import Sandbox
from tests.factories import csrf_post

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_owner_starts_a_stopped_sandbox_again(client_for, owner, fake_owners_sandbox):
    async_to_sync(services.stop_sandbox)(fake_owners_sandbox)
    response = csrf_post(client_for(owner), f"/sandboxes/{fake_owners_sandbox.id}/restart/")
    assert response.status_code == 200
    fake_owners_sandbox.refresh_from_db()
    assert fake_owners_sandbox.state == Sandbox.State.RUNNING
    assert 'data-console-url=' in response.content.decode()


def test_classmate_cannot_restart_it(client_for, classmate, fake_owners_sandbox):
    async_to_sync(services.stop_sandbox)(fake_owners_sandbox)
    assert csrf_post(client_for(classmate), f"/sandboxes/{fake_owners_sandbox.id}/restart/").status_code == 403
    fake_owners_sandbox.refresh_from_db()
    assert fake_owners_sandbox.state == Sandbox.State.STOPPED


def test_per_user_limit_is_explained(client_for, owner, fake_owners_sandbox, settings):
    settings.SANDBOXES_PER_USER = 1
    other = Sandbox.objects.create(owner=owner, lesson="big-picture", workspace="plain", image="tutorial/base:latest",
                                   state=Sandbox.State.STOPPED)
    response = csrf_post(client_for(owner), f"/sandboxes/{other.id}/restart/")
    assert "stop one to start another" in response.content.decode()
    other.refresh_from_db()
    assert other.state == Sandbox.State.STOPPED
