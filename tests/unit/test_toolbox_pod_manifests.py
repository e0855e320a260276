"""Kubernetes-lesson toolboxes as pods: the pure builders (schema-valid, a plain sandbox pod's
hardening plus kubectl's environment; a network policy that reaches the API server only), and the
choice of toolbox."""

from __future__ import annotations

import os
import subprocess
import sys

import kubernetes_validate
import pytest

from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import LABEL_INSTALL, LABEL_SANDBOX, BackendError, Limits, SandboxSpec
from sandbox.backends.toolboxes import PodToolboxes
from tests.fakes import FakeClusterAPI

K8S_SCHEMA_VERSION = "1.31"
SANDBOX_ID = "6a0f1a52-5d7e-4f43-a3a4-1f0f7a3b9c22"
API = [("172.30.99.1", 6443)]


@pytest.fixture
def spec() -> SandboxSpec:
    return SandboxSpec(sandbox_id=SANDBOX_ID, owner_id=7, owner_name="ada", lesson="pods",
                       workspace="kubernetes", image="tutorial/toolbox:latest", limits=Limits(), install="install-a")


def test_toolbox_pod_and_its_policy_are_schema_valid(spec):
    pod = km.toolbox_pod_manifest(spec, namespace="tutorial-tools", image="localhost:5000/tutorial/toolbox:latest",
                                  registry="localhost:5000")
    policy = km.toolbox_pods_policy("tutorial-tools", install="install-a", api_endpoints=API)
    for obj in (pod, policy):
        assert kubernetes_validate.validate(obj, K8S_SCHEMA_VERSION, strict=True) == K8S_SCHEMA_VERSION, obj["kind"]


def test_toolbox_pod_is_a_hardened_sandbox_pod_with_kubectls_environment_and_no_token(spec):
    pod = km.toolbox_pod_manifest(spec, namespace="tutorial-tools", image="img", registry="localhost:5000")
    pod_spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert pod["metadata"]["namespace"] == "tutorial-tools"
    assert pod_spec["automountServiceAccountToken"] is False and pod_spec["enableServiceLinks"] is False
    assert pod_spec["securityContext"]["runAsNonRoot"] is True and pod_spec["securityContext"]["runAsUser"] == 1000
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert {v["name"]: v["emptyDir"]["medium"] for v in pod_spec["volumes"]} == {"home": "Memory", "tmp": "Memory"}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["KUBECONFIG"] == "/home/learner/.kube/config" and env["REGISTRY"] == "localhost:5000"
    assert pod["metadata"]["labels"][LABEL_SANDBOX] == SANDBOX_ID
    assert pod["metadata"]["labels"]["tutorial.workspace"] == "kubernetes"
    # No secret of any kind in the pod: the learner's kubeconfig is written in by exec.
    assert "token" not in str(pod).lower().replace("automountserviceaccounttoken", "")


def test_toolbox_policy_lets_pods_reach_the_api_server_and_nothing_else():
    policy = km.toolbox_pods_policy("tutorial-tools", install="install-a",
                                    api_endpoints=[("172.30.99.1", 6443), ("10.96.0.1", 443)])
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in spec  # nothing comes in
    assert spec["podSelector"]["matchLabels"] == {LABEL_INSTALL: "install-a", "tutorial.workspace": "kubernetes"}
    assert spec["egress"] == [
        {"to": [{"ipBlock": {"cidr": "172.30.99.1/32"}}], "ports": [{"protocol": "TCP", "port": 6443}]},
        {"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
    ]
    with pytest.raises(ValueError):
        km.toolbox_pods_policy("tutorial-tools", install="install-a", api_endpoints=[])
    with pytest.raises(ValueError):
        km.toolbox_pods_policy("tutorial-tools", install="install-a", api_endpoints=[("api.example.org", 443)])


def test_api_server_endpoints_come_from_the_address_and_the_kubernetes_service():
    slices = [{"ports": [{"name": "https", "port": 6443}],
               "endpoints": [{"addresses": ["172.30.99.1"], "conditions": {"ready": True}},
                             {"addresses": ["172.30.99.9"], "conditions": {"ready": False}}]}]
    assert km.api_server_endpoints("https://10.96.0.1:443", slices) == [("10.96.0.1", 443), ("172.30.99.1", 6443)]
    assert km.api_server_endpoints("https://172.30.99.1:6443") == [("172.30.99.1", 6443)]
    assert km.api_server_endpoints("https://kubernetes.default.svc") == []


@pytest.mark.parametrize("value, ok", [("pod", True), ("docker", True), ("Pod", True), ("kind", False)])
def test_the_toolbox_setting_takes_docker_or_pod_only(value, ok):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutorial.settings", "TUTORIAL_KUBERNETES_TOOLBOX": value}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                             "print(settings.KUBERNETES_TOOLBOX)"], env=env, capture_output=True, text=True)
    if ok:
        assert result.returncode == 0 and result.stdout.strip() == value.lower()
    else:
        assert result.returncode != 0 and "TUTORIAL_KUBERNETES_TOOLBOX must be 'docker' or 'pod'" in result.stderr


async def test_toolbox_pods_policy_allows_the_kubeconfig_address_and_where_the_service_leads(settings):
    settings.KUBERNETES_TOOLBOX_API_SERVER = ""
    slices = [{"ports": [{"name": "https", "port": 6443}], "endpoints": [{"addresses": ["172.30.99.1"]}]}]
    policy = await PodToolboxes(FakeClusterAPI(endpoint_slices=slices), "tutorial-tools").namespace_policy()
    assert [rule["to"][0]["ipBlock"]["cidr"] for rule in policy["spec"]["egress"]] == ["10.96.0.1/32", "172.30.99.1/32"]
    # Without the EndpointSlices, the kubeconfig's address alone; a host name alone is refused with the fix.
    policy = await PodToolboxes(FakeClusterAPI(), "tutorial-tools").namespace_policy()
    assert [rule["to"][0]["ipBlock"]["cidr"] for rule in policy["spec"]["egress"]] == ["10.96.0.1/32"]
    with pytest.raises(BackendError, match="TUTORIAL_K8S_TOOLBOX_API_SERVER"):
        await PodToolboxes(FakeClusterAPI(host="https://api.example.org"), "tutorial-tools").namespace_policy()
