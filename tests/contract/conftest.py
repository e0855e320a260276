"""One contract suite, every backend that serves ``plain``: the Docker engine and pods on the real
cluster (``TUTORIAL_TEST_KUBECONFIG``). A missing engine or cluster fails under ``CI``."""

from __future__ import annotations

import uuid

import pytest

from sandbox.backends.base import Limits, SandboxSpec
from tests.kubernetes.real_cluster import require_cluster

PLAIN_BACKENDS = ("docker", "pod")


@pytest.fixture(params=PLAIN_BACKENDS)
def backend_kind(request) -> str:
    return request.param


@pytest.fixture
async def backend(backend_kind, settings, docker_client, base_image):
    if backend_kind == "docker":
        from sandbox.backends.docker import DockerBackend

        yield DockerBackend()
        return
    from sandbox.backends.pod import PodBackend

    settings.KUBERNETES_KUBECONFIG = require_cluster()
    settings.KUBERNETES_CONTEXT = ""
    backend = PodBackend()
    yield backend
    await backend.api.close()


@pytest.fixture
def make_spec(base_image):
    def make(**changes) -> SandboxSpec:
        values = dict(sandbox_id=str(uuid.uuid4()), owner_id=1, owner_name="contract", lesson="contract",
                      workspace="plain", image=base_image, limits=Limits())
        values.update(changes)
        return SandboxSpec(**values)

    return make


@pytest.fixture
async def sandbox(backend, make_spec):
    """A running sandbox, destroyed afterwards whatever happened: ``(spec, ref)``."""
    spec = make_spec()
    ref = await backend.create(spec)
    try:
        yield spec, ref
    finally:
        await backend.destroy(spec.sandbox_id)
