import pytest

from sandbox.models import Sandbox
from tests.factories import LESSON, csrf_post

pytestmark = [pytest.mark.django_db(transaction=True)]
URL = f"/sandboxes/start/{LESSON}/"


@pytest.mark.engine
def test_owner_starts_a_running_sandbox_and_gets_the_terminal_pane(client_for, owner, base_image, labelled_leftovers):
    from asgiref.sync import async_to_sync

    from sandbox import services

    response = csrf_post(client_for(owner), URL)
    assert response.status_code == 200
    sandbox = Sandbox.objects.get(owner=owner, lesson=LESSON)
    try:
        assert sandbox.state == Sandbox.State.RUNNING
        assert f'data-console-url="/ws/sandboxes/{sandbox.id}/console/"' in response.content.decode()
        # Starting again returns the same sandbox, not a second one.
        csrf_post(client_for(owner), URL)
        assert Sandbox.objects.filter(owner=owner, lesson=LESSON).count() == 1
    finally:
        async_to_sync(services.stop_sandbox)(sandbox)
    assert labelled_leftovers(sandbox.id) == []


def test_anonymous_is_sent_to_log_in_and_nothing_starts(client_for):
    response = csrf_post(client_for(None), URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Sandbox.objects.exists()


def test_post_without_csrf_token_is_refused(client_for, owner):
    response = client_for(owner).post(URL)
    assert response.status_code == 403
    assert not Sandbox.objects.exists()


def test_get_is_not_allowed(client_for, owner):
    assert client_for(owner).get(URL).status_code == 405


def test_unknown_lesson_is_404(client_for, owner):
    assert csrf_post(client_for(owner), "/sandboxes/start/no-such-lesson/").status_code == 404


def test_engine_down_shows_what_is_wrong_and_how_to_fix_it(client_for, owner, settings, tmp_path):
    from sandbox.services import get_backend

    settings.DOCKER_HOST = f"unix://{tmp_path}/no-engine.sock"
    get_backend.cache_clear()
    try:
        response = csrf_post(client_for(owner), URL)
    finally:
        get_backend.cache_clear()
    body = response.content.decode()
    assert response.status_code == 200
    assert "does not answer" in body and "start-dockerd" in body
    assert Sandbox.objects.get(owner=owner).state == Sandbox.State.FAILED


@pytest.mark.engine
def test_without_htmx_the_form_post_starts_it_and_shows_the_lesson_page(client_for, owner, base_image, labelled_leftovers):
    """A click before htmx has loaded (or without JavaScript) is a plain form post."""
    from asgiref.sync import async_to_sync

    from sandbox import services

    client = client_for(owner)
    client.get(f"/lessons/{LESSON}/")
    response = client.post(URL, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code == 302 and response["Location"] == f"/lessons/{LESSON}/"
    sandbox = Sandbox.objects.get(owner=owner, lesson=LESSON)
    try:
        assert sandbox.state == Sandbox.State.RUNNING
        page = client.get(response["Location"]).content.decode()
        assert f'data-console-url="/ws/sandboxes/{sandbox.id}/console/"' in page
    finally:
        async_to_sync(services.stop_sandbox)(sandbox)
    assert labelled_leftovers(sandbox.id) == []
