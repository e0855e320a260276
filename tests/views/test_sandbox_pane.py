import pytest
from asgiref.sync import async_to_sync

from sandbox import services
from sandbox.models import Sandbox
from tests.factories import LESSON, csrf_post

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


@pytest.fixture
def home_keeping_backend(settings, fake_backend):
    from sandbox.services import get_backend

    settings.SANDBOX_BACKENDS = {workspace: "tests.fakes.HomeKeepingBackend" for workspace in fake_backend.workspaces}
    get_backend.cache_clear()
    yield fake_backend
    get_backend.cache_clear()


@pytest.mark.parametrize("store", ["files", "database"])
def test_a_stopped_sandbox_says_its_files_are_kept_on_the_replica_that_saved_them(
        client_for, owner, settings, home_keeping_backend, store):
    settings.HOME_FILES_STORE = store
    sandbox = async_to_sync(services.start_sandbox)(owner, LESSON, "plain", "base")
    home_keeping_backend.sandboxes[str(sandbox.id)].home = b"notes"
    async_to_sync(services.stop_sandbox)(sandbox)
    assert "data-files-kept" in client_for(owner).get(f"/sandboxes/{sandbox.id}/pane/").content.decode()


def test_a_stopped_sandbox_says_its_files_are_kept_on_another_replica_with_the_database_store(
        client_for, owner, settings, tmp_path, home_keeping_backend):
    settings.HOME_FILES_STORE = "database"
    sandbox = async_to_sync(services.start_sandbox)(owner, LESSON, "plain", "base")
    home_keeping_backend.sandboxes[str(sandbox.id)].home = b"notes"
    async_to_sync(services.stop_sandbox)(sandbox)

    settings.DATA_DIR = tmp_path / "replica-b"  # another site pod, with an emptyDir of its own
    settings.DATA_DIR.mkdir()
    pane = client_for(owner).get(f"/sandboxes/{sandbox.id}/pane/").content.decode()
    assert "data-files-kept" in pane
    assert csrf_post(client_for(owner), f"/sandboxes/{sandbox.id}/reset/").status_code == 200
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    assert home_keeping_backend.sandboxes[str(sandbox.id)].home == b""  # Reset: nothing of the old home
