"""The Docker backend's small engine calls made on the event loop (status, exit code, resize)
against the real engine, and what they say when the engine or the sandbox is not there."""

from __future__ import annotations

import uuid

import pytest

from sandbox.engine import client as engine_client
from sandbox.backends.base import BackendError, EngineState, EngineUnavailable, SandboxSpec
from sandbox.backends.docker import DockerBackend

pytestmark = pytest.mark.engine


@pytest.fixture
async def sandbox(docker_client, base_image, labelled_leftovers):
    """A plain sandbox made by the real create path; removed (and checked gone) afterwards."""
    backend = DockerBackend()
    spec = SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=4242, owner_name="learner",
                       lesson="engine-calls", workspace="plain", image=base_image)
    ref = await backend.create(spec)
    yield backend, spec.sandbox_id, ref
    await backend.destroy(spec.sandbox_id)
    assert labelled_leftovers(spec.sandbox_id) == []


async def test_status_and_exit_code_follow_the_container(sandbox, docker_client):
    backend, sandbox_id, ref = sandbox
    assert await backend.status(ref) == EngineState.RUNNING
    assert await backend.exit_code(ref) is None

    docker_client.containers.get(ref).kill(signal="SIGKILL")
    docker_client.containers.get(ref).wait(timeout=30)
    assert await backend.status(ref) == EngineState.EXITED
    assert await backend.exit_code(ref) == 137

    await backend.destroy(sandbox_id)
    assert await backend.status(ref) == EngineState.MISSING
    assert await backend.exit_code(ref) is None


async def test_resize_sets_the_tty_size(sandbox, docker_client):
    backend, _sandbox_id, ref = sandbox
    await backend.resize(ref, 123, 45)
    # The TTY itself, as a program in it sees it.
    exit_code, output = docker_client.containers.get(ref).exec_run(["sh", "-c", "stty size < /proc/1/fd/0"])
    assert (exit_code, output.decode().strip()) == (0, "45 123")


async def test_resizing_a_gone_sandbox_says_so(sandbox):
    backend, sandbox_id, ref = sandbox
    await backend.destroy(sandbox_id)
    with pytest.raises(BackendError, match="the sandbox is gone"):
        await backend.resize(ref, 80, 24)


async def test_no_engine_is_engine_unavailable(tmp_path):
    backend = DockerBackend(docker_host=f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(EngineUnavailable, match="does not answer"):
        await backend.status("anything")
    with pytest.raises(EngineUnavailable):
        await backend.resize("anything", 80, 24)


async def test_chunked_and_sized_answers_are_read_whole(sandbox):
    """The engine sends a list of containers chunked (an inspect of a missing one with a length)."""
    _backend, _sandbox_id, ref = sandbox
    from django.conf import settings

    answer = await engine_client.request(settings.DOCKER_HOST, "GET", "/containers/json", {"all": 1})
    assert answer.status == 200
    assert ref in {container["Id"] for container in answer.json()}
    missing = await engine_client.request(settings.DOCKER_HOST, "GET", "/containers/no-such-container/json")
    assert (missing.status, missing.message()) == (404, "No such container: no-such-container")
