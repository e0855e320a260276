"""The real cluster the Kubernetes tests run against: ``TUTORIAL_TEST_KUBECONFIG`` (``make test``
and ``.ci/run`` bring up this machine's local cluster and point it there). Under ``CI`` a missing
cluster is a failure, never a skip."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from cluster.layout import DOCKER_NETWORK

KUBECONFIG = os.environ.get("TUTORIAL_TEST_KUBECONFIG", "")


def require_cluster() -> str:
    if KUBECONFIG and Path(KUBECONFIG).is_file():
        return KUBECONFIG
    message = (f"no cluster: TUTORIAL_TEST_KUBECONFIG is {KUBECONFIG or 'not set'}"
               f"{' (no such file)' if KUBECONFIG else ''}; `make test` brings up the local cluster and sets it")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def toolbox_network() -> str:
    """The Docker network on which toolboxes reach the API server (the local cluster's own by default)."""
    return os.environ.get("TUTORIAL_K8S_TOOLBOX_NETWORK", DOCKER_NETWORK)


def point_settings_at_cluster(settings) -> None:
    """Make the site's Kubernetes backend use the test cluster (a fresh backend object)."""
    from sandbox import services

    settings.KUBERNETES_KUBECONFIG = require_cluster()
    settings.KUBERNETES_CONTEXT = ""
    settings.KUBERNETES_API_INTERNAL_SERVER = os.environ.get("TUTORIAL_K8S_API_INTERNAL_SERVER", "")
    settings.KUBERNETES_TOOLBOX_NETWORK = toolbox_network()
    services.get_backend.cache_clear()


def install_of_its_own(settings, purpose: str) -> str:
    """Give the test an install id of its own: the install-wide objects it makes on the shared
    cluster (the toolboxes' NetworkPolicy) are then its own to remove, and never another test
    run's, whose pods they guard."""
    install = f"{purpose}-{uuid.uuid4().hex[:8]}"
    settings.INSTALL_ID = install
    return install


async def policies_of_install(api, namespace: str, install: str) -> list[str]:
    """The NetworkPolicies in ``namespace`` labelled for ``install``."""
    from sandbox.backends.base import LABEL_INSTALL

    answer = await api.request("GET", f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies",
                               {"labelSelector": f"{LABEL_INSTALL}={install}"})
    assert answer.status == 200, answer.message()
    return [item["metadata"]["name"] for item in answer.json()["items"]]


def build_toolbox_image(docker_client, *, in_registry: bool = False) -> str:
    """The toolbox image built from this checkout (the engine's cache makes a rebuild quick); with
    ``in_registry`` also pushed to the classroom registry, which toolbox pods pull from as the
    node pulls lesson images. Returns the local tag."""
    from django.conf import settings

    from sandbox.images.build import build_image, register
    from sandbox.images.toolbox import RECIPE
    from sandbox.services import image_tag

    register(RECIPE)
    build_image(docker_client, "base")
    build_image(docker_client, "toolbox")
    tag = image_tag("toolbox")
    if in_registry:
        target = f"{settings.GATEWAY_REGISTRY}/tutorial/toolbox"
        docker_client.images.get(tag).tag(target, "latest")
        for line in docker_client.images.push(target, "latest", stream=True, decode=True):
            assert not line.get("error"), line
    return tag
