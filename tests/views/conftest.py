import pytest
from django.test import Client

from sandbox import services
from sandbox.models import Sandbox
from tests.factories import LESSON, signed_in_client


@pytest.fixture
def client_for():
    """A test client signed in as the given user (None: anonymous), with CSRF checks on."""

    def make(user=None) -> Client:
        return signed_in_client(user, enforce_csrf_checks=True)

    return make


@pytest.fixture
def owners_sandbox(owner, base_image, labelled_leftovers):
    """A real running sandbox of the owner (made through the services, on the real engine)."""
    from asgiref.sync import async_to_sync

    sandbox = async_to_sync(services.start_sandbox)(owner, LESSON, "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    yield sandbox
    async_to_sync(services.stop_sandbox)(sandbox)
    assert labelled_leftovers(sandbox.id) == []


@pytest.fixture
def fake_owners_sandbox(owner, fake_backend):
    """A running sandbox of the owner, made through the services on the in-memory backend: for
    tests of who may do what, which need no engine."""
    from asgiref.sync import async_to_sync

    sandbox = async_to_sync(services.start_sandbox)(owner, LESSON, "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    return sandbox


@pytest.fixture(autouse=True)
def _fresh_limits():
    """Abuse-limit counters live in the cache: every test starts with none (user ids repeat
    between tests, and every test client comes from 127.0.0.1)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


ENGINE_FIXTURES = {"docker_client", "base_image", "owners_sandbox", "labelled_leftovers"}


def pytest_collection_modifyitems(items):
    """A view test that asks for the real engine is an engine test (``make unit`` leaves it out),
    whether or not its file says so."""
    for item in items:
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engine)
