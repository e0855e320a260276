
import pytest
from asgiref.sync import async_to_sync

from sandbox import services
from sandbox.models import Sandbox
from tests.factories import csrf_post

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.mark.engine
def test_owner_reset_gives_a_fresh_container_without_the_old_files(client_for, owner, owners_sandbox):
    async_to_sync(services.run_script)(owners_sandbox, "echo keep > ~/note.txt", timeout=10)
    old_ref = owners_sandbox.engine_ref
    response = csrf_post(client_for(owner), f"/sandboxes/{owners_sandbox.id}/reset/")
    assert response.status_code == 200
    owners_sandbox.refresh_from_db()
    assert owners_sandbox.state == Sandbox.State.RUNNING
    assert owners_sandbox.engine_ref != old_ref
    result = async_to_sync(services.run_script)(owners_sandbox, "test -e ~/note.txt", timeout=10)
    assert result.exit_code == 1


def test_classmate_cannot_reset(client_for, classmate, fake_owners_sandbox):
    old_ref = fake_owners_sandbox.engine_ref
    assert csrf_post(client_for(classmate), f"/sandboxes/{fake_owners_sandbox.id}/reset/").status_code == 403
    fake_owners_sandbox.refresh_from_db()
    assert fake_owners_sandbox.engine_ref == old_ref


def test_unknown_id_is_404(client_for, owner, unknown_sandbox_id):
    assert csrf_post(client_for(owner), f"/sandboxes/{unknown_sandbox_id}/reset/").status_code == 404
