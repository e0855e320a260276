"""Shared fixtures: role users, a real Docker engine, and the real ASGI app with a real session.

Integration tests *fail* (never skip) when ``CI`` is set and the engine is missing.
"""

from __future__ import annotations

import os
import uuid

import docker
import pytest
from django.conf import settings

from tests.factories import make_user
from tests.websockets import Sockets, console_path, dashboard_path

# The classroom fixtures (instructors, a classroom, a learner's sandbox) for every folder's tests.
pytest_plugins = ["tests.classroom_fixtures"]

IN_CI = bool(os.environ.get("CI"))
# The tests are an install of their own on the shared engine: a site served from this checkout
# (make run) reaps only its own objects and leaves the suite's alone, and the reverse.
TEST_INSTALL_ID = "tests"


@pytest.fixture(scope="session", autouse=True)
def _test_install_id():
    os.environ["TUTORIAL_INSTALL_ID"] = TEST_INSTALL_ID  # for the servers and commands tests start
    settings.INSTALL_ID = TEST_INSTALL_ID


def _engine_or_fail() -> docker.DockerClient:
    try:
        client = docker.DockerClient(base_url=settings.DOCKER_HOST, timeout=30)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001
        message = f"no Docker engine at {settings.DOCKER_HOST}: {exc} (run scripts/start-dockerd.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """The real engine. Under CI a missing engine is a failure, not a skip."""
    return _engine_or_fail()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    from sandbox.images.recipes import image_tag

    tag = image_tag("base")
    try:
        docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        from sandbox.images.build import build_image

        build_image(docker_client, "base")
    return tag


@pytest.fixture
def fresh_sandbox_images(settings, docker_client):
    """Sandbox images built from this checkout's recipes under a prefix of the test's own, for
    tests about what the images hold: the shared tags that the site and other tests use are
    neither replaced nor trusted to be current. Call it with the names to build (dependencies
    first); they are removed afterwards."""
    from sandbox.images.build import build_image, build_order
    from sandbox.images.recipes import image_tag

    settings.SANDBOX_IMAGE_PREFIX = f"tutorial-imagetest-{uuid.uuid4().hex[:8]}"
    built: list[str] = []

    def build(*names: str) -> None:
        for name in build_order(list(names)):
            if name not in built:
                build_image(docker_client, name)
                built.append(name)

    yield build
    for name in reversed(built):
        try:
            docker_client.images.remove(image_tag(name), force=True)
        except docker.errors.ImageNotFound:
            pass


@pytest.fixture(autouse=True)
def _fresh_backends():
    """Backends are made once per process from settings; a test that changes those settings (a
    cluster, an engine address) must not leak its backend into the next test."""
    from django.utils import translation

    from sandbox.services import get_backend

    get_backend.cache_clear()
    yield
    get_backend.cache_clear()
    translation.deactivate()


@pytest.fixture
def fake_backend(settings):
    """Every workspace served by the in-memory backend of tests/fakes.py: no engine, no cluster."""
    from sandbox.services import get_backend
    from tests.fakes import FakeBackend

    FakeBackend.reset()
    settings.SANDBOX_BACKENDS = {workspace: "tests.fakes.FakeBackend" for workspace in FakeBackend.workspaces}
    get_backend.cache_clear()
    yield FakeBackend
    FakeBackend.reset()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Role users are made per test; the production hasher would dominate the suite's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_data_dir(settings, tmp_path):
    """Gateway sockets and other runtime files of a test go to its own folder."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()



@pytest.fixture
def owner(db):
    return make_user("owner")


@pytest.fixture
def classmate(db):
    return make_user("classmate")


@pytest.fixture
def outsider(db):
    return make_user("outsider")


@pytest.fixture
def labelled_leftovers(docker_client):
    """A function listing every engine object still labelled for a sandbox id."""
    from sandbox.backends.base import LABEL_SANDBOX

    def leftovers(sandbox_id) -> list[str]:
        label = {"label": f"{LABEL_SANDBOX}={sandbox_id}"}
        found = [f"container {c.name}" for c in docker_client.containers.list(all=True, ignore_removed=True, filters=label)]
        found += [f"network {n.name}" for n in docker_client.networks.list(filters=label)]
        found += [f"volume {v.name}" for v in docker_client.volumes.list(filters=label)]
        return found

    return leftovers


@pytest.fixture
async def site_socket(db):
    """Open a websocket to a path of the site through the real ASGI app (origin validator, auth,
    session): ``await site_socket(path, user)``, not yet connected; all closed when the test ends."""
    sockets = Sockets()
    yield sockets.open
    await sockets.close_all()


@pytest.fixture
def console(site_socket):
    """Open a sandbox's console websocket: ``await console(sandbox_id, user)``."""

    async def open_console(sandbox_id, user=None, **options):
        return await site_socket(console_path(sandbox_id), user, **options)

    return open_console


@pytest.fixture
def dashboard(site_socket):
    """Open a classroom's live dashboard websocket: ``await dashboard(classroom_id, user)``."""

    async def open_dashboard(classroom_id, user=None, **options):
        return await site_socket(dashboard_path(classroom_id), user, **options)

    return open_dashboard


@pytest.fixture
def unknown_sandbox_id() -> str:
    return str(uuid.uuid4())
