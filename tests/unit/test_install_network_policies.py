"""An install's NetworkPolicy in its pods' namespace, on a fake cluster API: the toolboxes' policy
follows the API server when it moves (its EndpointSlices change while the site runs), through a
new sandbox's start and through the reaper's pass; there is only ever one per install, the
reaper makes none for an install with no pods there, and an install taken down removes its own
only, and only once none of its pods are left."""

from __future__ import annotations

import pytest

from sandbox import reaper, services
from sandbox.backends.base import LABEL_INSTALL, LABEL_ROLE, LABEL_SANDBOX, LABEL_WORKSPACE, ROLE_CONSOLE
from sandbox.backends.pod import PodBackend
from sandbox.backends.toolboxes import PodToolboxes
from sandbox.management.commands.remove_network_policies import remove_install_policies
from tests.fakes import FakeClusterAPI

TOOLS = "tutorial-tools"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.31",
              "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "v1.31",
              "pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/audit-version": "v1.31"}


def api_server_at(address: str) -> list[dict]:
    """The ``default/kubernetes`` Service's EndpointSlices with the API server at ``address``:6443."""
    return [{"ports": [{"name": "https", "port": 6443}], "endpoints": [{"addresses": [address]}]}]


def allowed(api: FakeClusterAPI, install: str = "install-a") -> list[str]:
    policy = api.network_policies[(TOOLS, f"tutorial-toolboxes-{install}")]
    return [peer["ipBlock"]["cidr"] for rule in policy["spec"]["egress"] for peer in rule["to"]]


def toolbox_pod(install: str) -> dict:
    return {"metadata": {"name": "tutorial-sbx-1", "namespace": TOOLS,
                         "labels": {LABEL_SANDBOX: "1", LABEL_ROLE: ROLE_CONSOLE, LABEL_INSTALL: install,
                                    LABEL_WORKSPACE: "kubernetes"}},
            "status": {"phase": "Running"}}


@pytest.fixture
def cluster(settings):
    settings.INSTALL_ID = "install-a"
    settings.KUBERNETES_TOOLBOX_API_SERVER = ""
    return FakeClusterAPI({TOOLS: RESTRICTED}, endpoint_slices=api_server_at("172.30.99.1"))


async def test_a_start_after_the_api_server_moved_allows_its_new_address_and_no_longer_the_old(cluster):
    toolboxes = PodToolboxes(cluster, TOOLS)
    await toolboxes.ensure_namespace()
    assert allowed(cluster) == ["10.96.0.1/32", "172.30.99.1/32"]

    cluster.endpoint_slices = api_server_at("172.30.99.7")
    await toolboxes.ensure_namespace()  # a start soon after: the policy applied moments ago stands
    assert allowed(cluster) == ["10.96.0.1/32", "172.30.99.1/32"]
    toolboxes.policy_seconds = 0  # as once that time has passed
    await toolboxes.ensure_namespace()
    assert allowed(cluster) == ["10.96.0.1/32", "172.30.99.7/32"]
    assert list(cluster.network_policies) == [(TOOLS, "tutorial-toolboxes-install-a")]


@pytest.fixture
def reaper_of(settings, monkeypatch):
    """A reaper whose Kubernetes backend's toolboxes are ``toolboxes`` (plain sandboxes are not pods)."""
    settings.SANDBOX_BACKENDS = dict(settings.SANDBOX_BACKENDS, kubernetes="sandbox.backends.kubernetes.KubernetesBackend")
    settings.KUBERNETES_KUBECONFIG = "/nonexistent/kubeconfig"
    settings.KUBERNETES_LOCAL_CLUSTER = False
    settings.KUBERNETES_TOOLBOX = "pod"

    def use(toolboxes: PodToolboxes) -> None:
        kubernetes = type("Backend", (), {"toolbox": toolboxes})()
        monkeypatch.setattr(services, "get_backend", lambda workspace: kubernetes if workspace == "kubernetes" else object())

    return use


async def test_the_reapers_pass_moves_the_toolboxes_policy_with_the_api_server_and_keeps_one(cluster, reaper_of):
    site, reaper_process = PodToolboxes(cluster, TOOLS), PodToolboxes(cluster, TOOLS)
    reaper_process.policy_seconds = 0  # every pass, as every pass once the time between has passed
    reaper_of(reaper_process)
    await site.ensure_namespace()
    cluster.pods.append(toolbox_pod("install-a"))

    cluster.endpoint_slices = api_server_at("172.30.99.7")
    await reaper.refresh_network_policies()
    assert allowed(cluster) == ["10.96.0.1/32", "172.30.99.7/32"]

    # Deleted by hand while a toolbox runs: back at the next pass, still one.
    del cluster.network_policies[(TOOLS, "tutorial-toolboxes-install-a")]
    await reaper.refresh_network_policies()
    await reaper.refresh_network_policies()
    assert allowed(cluster) == ["10.96.0.1/32", "172.30.99.7/32"]
    assert list(cluster.network_policies) == [(TOOLS, "tutorial-toolboxes-install-a")]


async def test_the_reaper_makes_no_policy_for_an_install_without_pods_there(cluster, reaper_of):
    cluster.pods.append(toolbox_pod("install-b"))  # another install's toolbox
    toolboxes = PodToolboxes(cluster, TOOLS)
    toolboxes.policy_seconds = 0
    reaper_of(toolboxes)
    await reaper.refresh_network_policies()
    assert cluster.network_policies == {}


async def test_an_install_removes_its_own_policy_and_leaves_anothers(cluster, settings):
    await PodToolboxes(cluster, TOOLS).ensure_namespace()
    settings.INSTALL_ID = "install-b"
    other = PodToolboxes(cluster, TOOLS)
    await other.ensure_namespace()
    assert sorted(name for _, name in cluster.network_policies) == ["tutorial-toolboxes-install-a",
                                                                    "tutorial-toolboxes-install-b"]
    assert await other.remove_namespace_policy() is True
    assert await other.remove_namespace_policy() is False
    assert list(cluster.network_policies) == [(TOOLS, "tutorial-toolboxes-install-a")]


async def test_a_finished_install_removes_its_policies_but_not_while_its_pods_are_left(cluster, settings):
    sandboxes = "tutorial-sandboxes"
    cluster.namespaces[sandboxes] = RESTRICTED
    await PodBackend(cluster, sandboxes).ensure_namespace()
    await PodToolboxes(cluster, TOOLS).ensure_namespace()
    cluster.pods.append(toolbox_pod("install-a"))

    done, refused = await remove_install_policies([PodBackend(cluster, sandboxes), PodToolboxes(cluster, TOOLS)])
    assert done == [f"removed: tutorial-sandboxes-deny-install-a in {sandboxes}"]
    assert len(refused) == 1 and "still in tutorial-tools" in refused[0]
    assert list(cluster.network_policies) == [(TOOLS, "tutorial-toolboxes-install-a")]

    cluster.pods.clear()
    done, refused = await remove_install_policies([PodBackend(cluster, sandboxes), PodToolboxes(cluster, TOOLS)])
    assert refused == [] and cluster.network_policies == {}
