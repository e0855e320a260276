"""Fixtures for the Kubernetes workspace: a real HTTP Kubernetes API mock (kmock) the official
client talks to over TCP on 127.0.0.1, a kubeconfig for it, and a Docker network standing in for
kind's, for the toolbox console on the real engine.
"""

from __future__ import annotations

import uuid

import kmock
import pytest
from kmock._internal import parsing

from sandbox.backends.base import Limits, SandboxSpec
from tests.kubernetes.kmock_helpers import LEARNER_TOKEN, api_url, write_kubeconfig


_original_parse_path = parsing.parse_path


def _parse_path_with_namespaces(path: str) -> parsing.ParsedPath:
    """kmock 0.8 reads ``/api/v1/namespaces[/name]`` as "a namespace with no resource" and fails
    on the namespaces resource itself (it cannot unpack an empty list). Read those paths as the
    cluster-scoped ``namespaces`` resource, as the real API server does."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "api" and parts[2] == "namespaces":
        rest = parts[3:]
        if not rest:
            return parsing.ParsedPath("", parts[1], "namespaces", None, None, None)
        if len(rest) == 1:
            return parsing.ParsedPath("", parts[1], "namespaces", None, rest[0], None)
        if len(rest) == 2 and rest[1] in ("status", "finalize"):
            return parsing.ParsedPath("", parts[1], "namespaces", None, rest[0], rest[1])
    return _original_parse_path(path)


@pytest.fixture
async def k8s_api(monkeypatch):
    """A kmock Kubernetes emulator on a real 127.0.0.1 port. TokenRequests answer with
    ``LEARNER_TOKEN``; everything else is stored and served like a (simple) API server."""
    monkeypatch.setattr(parsing, "parse_path", _parse_path_with_namespaces)
    async with kmock.KubernetesEmulator() as api, kmock.Server(api):
        for resource in ("v1/pods", "v1/namespaces"):  # listable even while empty
            api.resources[resource] = {}
        api[kmock.subresource("token")] << {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": []},
            "status": {"token": LEARNER_TOKEN, "expirationTimestamp": "2030-01-01T00:00:00Z"},
        }
        yield api


@pytest.fixture
def toolbox_network(docker_client):
    """An internal Docker bridge standing in for kind's ``kind`` network (no route anywhere)."""
    name = f"tutorial-test-kind-{uuid.uuid4().hex[:8]}"
    network = docker_client.networks.create(name, driver="bridge", internal=True, labels={"tutorial.test": "kind-network"})
    yield name
    try:
        for container in docker_client.containers.list(all=True, ignore_removed=True, filters={"network": name}):
            container.remove(force=True)
        network.remove()
    except Exception:  # noqa: BLE001 - best effort; the assertion that matters is in the test
        pass


@pytest.fixture
def k8s_settings(settings, k8s_api, tmp_path, toolbox_network):
    """Point the backend at the mock cluster and the stand-in network."""
    settings.KUBERNETES_KUBECONFIG = write_kubeconfig(tmp_path / "kubeconfig", api_url(k8s_api))
    settings.KUBERNETES_CONTEXT = ""
    settings.KUBERNETES_API_INTERNAL_SERVER = "https://kind-control-plane:6443"
    settings.KUBERNETES_TOOLBOX_NETWORK = toolbox_network
    settings.KUBERNETES_NAMESPACE_PREFIX = "tutorial-"
    settings.KUBERNETES_POD_SECURITY_VERSION = "v1.31"
    settings.KUBERNETES_TOKEN_SECONDS = 3600
    settings.KUBERNETES_NAMESPACE_WAIT_SECONDS = 5
    settings.KUBERNETES_LESSON_REGISTRY = "localhost:5000"
    settings.KUBERNETES_QUOTA = None
    settings.KUBERNETES_LIMIT_RANGE = None
    return settings


@pytest.fixture
def make_spec(base_image):
    """A kubernetes-workspace spec. The console image is the sandbox base: provisioning does not
    depend on kubectl being in it (the toolbox image has its own test)."""

    def make(sandbox_id: str | None = None, lesson: str = "pods") -> SandboxSpec:
        return SandboxSpec(sandbox_id=sandbox_id or str(uuid.uuid4()), owner_id=1, owner_name="owner",
                           lesson=lesson, workspace="kubernetes", image=base_image, limits=Limits())

    return make
