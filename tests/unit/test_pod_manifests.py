"""Plain sandboxes as pods: the pure builders (schema-valid, the Docker container's hardening in
Kubernetes terms), the choice of backend, and reading the cluster configuration."""

from __future__ import annotations

import os
import subprocess
import sys

import kubernetes_validate
import pytest

from sandbox.backends import k8s_api
from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import LABEL_INSTALL, LABEL_ROLE, LABEL_SANDBOX, Limits, SandboxSpec

K8S_SCHEMA_VERSION = "1.31"
SANDBOX_ID = "0b7c3a52-5d7e-4f43-a3a4-1f0f7a3b9c11"


@pytest.fixture
def spec() -> SandboxSpec:
    return SandboxSpec(sandbox_id=SANDBOX_ID, owner_id=7, owner_name="ada", lesson="big-picture",
                       workspace="plain", image="tutorial/base:latest", limits=Limits(), install="install-a")


def test_pod_namespace_and_policy_are_schema_valid(spec):
    pod = km.sandbox_pod_manifest(spec, namespace="tutorial-sandboxes", image="localhost:5000/tutorial/base:latest")
    for obj in (pod, km.sandbox_pods_namespace_manifest("tutorial-sandboxes", install="install-a", pod_security_version="v1.31"),
                km.sandbox_pods_deny_policy("tutorial-sandboxes", install="install-a")):
        assert kubernetes_validate.validate(obj, K8S_SCHEMA_VERSION, strict=True) == K8S_SCHEMA_VERSION, obj["kind"]


def test_pod_is_hardened_as_pod_security_restricted_requires(spec):
    pod = km.sandbox_pod_manifest(spec, namespace="tutorial-sandboxes", image="img")
    pod_spec = pod["spec"]
    container = pod_spec["containers"][0]
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["enableServiceLinks"] is False
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] == 1000
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert container["tty"] is True and container["stdin"] is True
    assert container["resources"]["limits"] == {"cpu": "1000m", "memory": str(512 * 1024 * 1024)}
    assert "hostNetwork" not in pod_spec and "hostPID" not in pod_spec
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["home"]["emptyDir"] == {"medium": "Memory", "sizeLimit": str(64 * 1024 * 1024)}
    assert volumes["tmp"]["emptyDir"]["sizeLimit"] == str(64 * 1024 * 1024)
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/home/learner", "/tmp"}


def test_pod_carries_the_sandbox_and_install_labels(spec):
    labels = km.sandbox_pod_manifest(spec, namespace="ns", image="img")["metadata"]["labels"]
    assert labels[LABEL_SANDBOX] == SANDBOX_ID
    assert labels[LABEL_INSTALL] == "install-a"
    assert labels[LABEL_ROLE] == "console"
    assert labels["tutorial.workspace"] == "plain"


def test_only_net_bind_service_may_be_added(spec):
    import dataclasses

    allowed = dataclasses.replace(spec, capabilities=("NET_BIND_SERVICE",))
    caps = km.sandbox_pod_manifest(allowed, namespace="ns", image="img")["spec"]["containers"][0]["securityContext"]["capabilities"]
    assert caps == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    with pytest.raises(ValueError, match="CHOWN"):
        km.sandbox_pod_manifest(dataclasses.replace(spec, capabilities=("CHOWN",)), namespace="ns", image="img")


def test_namespace_enforces_restricted_and_policy_denies_everything_for_the_install():
    labels = km.sandbox_pods_namespace_manifest("ns", install="a", pod_security_version="v1.31")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.31"
    policy = km.sandbox_pods_deny_policy("ns", install="a")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy and "egress" not in policy  # no rule: nothing allowed, not even DNS
    assert policy["podSelector"]["matchLabels"] == {LABEL_INSTALL: "a"}


def test_pod_names_come_only_from_canonical_uuids():
    assert km.sandbox_pod_name(SANDBOX_ID) == f"tutorial-sbx-{SANDBOX_ID}"
    with pytest.raises(ValueError):
        km.sandbox_pod_name(SANDBOX_ID.upper())
    with pytest.raises(ValueError):
        km.sandbox_pod_name("../etc")


@pytest.mark.parametrize("image, expected", [
    ("tutorial/base:latest", "localhost:5000/tutorial/base:latest"),
    ("localhost:5000/tutorial/base:latest", "localhost:5000/tutorial/base:latest"),
    ("registry.example.org/x/y:1", "registry.example.org/x/y:1"),
    ("127.0.0.1:5000/a:1", "127.0.0.1:5000/a:1"),
])
def test_pod_image_names_the_classroom_registry(image, expected):
    assert km.pod_image(image, "localhost:5000") == expected


def test_exit_code_is_read_from_the_exec_status():
    class Socket:
        protocol = "v4.channel.k8s.io"

    stream = k8s_api.ChannelStream(Socket())
    assert stream.exit_code() is None
    stream.status = {"status": "Success"}
    assert stream.exit_code() == 0
    stream.status = {"status": "Failure", "reason": "NonZeroExitCode",
                     "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
    assert stream.exit_code() == 3


def test_in_cluster_only_in_a_pod_without_a_kubeconfig(tmp_path):
    kubeconfig = tmp_path / "config"
    assert not k8s_api.in_cluster("", {"HOME": str(tmp_path)})
    assert k8s_api.in_cluster("", {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBECONFIG": str(kubeconfig)})
    kubeconfig.write_text("{}")
    assert not k8s_api.in_cluster("", {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBECONFIG": str(kubeconfig)})
    assert not k8s_api.in_cluster(str(kubeconfig), {"KUBERNETES_SERVICE_HOST": "10.96.0.1"})


def test_no_kubeconfig_says_how_to_get_one(tmp_path):
    from sandbox.backends.base import BackendError

    with pytest.raises(BackendError, match="TUTORIAL_KUBECONFIG"):
        k8s_api.load_config(str(tmp_path / "missing"), environ={})


def test_a_kubeconfig_token_is_sent_and_renewed_once_per_api_call(tmp_path, monkeypatch):
    """An expiring token (exec plugins, the in-cluster token file) is renewed by the client's
    hook, which rebuilds the configuration's settings: once per call, not once for each header
    name the client tries."""
    from kubernetes.config.kube_config import KubeConfigLoader

    from sandbox.backends import k8s_api

    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: tok-1}}]\n")
    config = k8s_api.load_config(str(kubeconfig), environ={})
    renewals = []
    set_config = KubeConfigLoader._set_config
    monkeypatch.setattr(KubeConfigLoader, "_set_config", lambda self, c: (renewals.append(1), set_config(self, c)))
    assert config.headers() == {"Authorization": "Bearer tok-1"}
    assert len(renewals) == 1


def test_the_in_cluster_token_is_sent(tmp_path):
    from kubernetes import client
    from kubernetes.config.incluster_config import InClusterConfigLoader

    from sandbox.backends import k8s_api

    (tmp_path / "token").write_text("tok-2")
    (tmp_path / "ca.crt").write_text("not read by this test")
    configuration = client.Configuration()
    InClusterConfigLoader(str(tmp_path / "token"), str(tmp_path / "ca.crt"), environ={
        "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}).load_and_set(configuration)
    assert k8s_api.ClusterConfig("https://10.0.0.1", False, configuration, "in-cluster").headers() == {
        "Authorization": "bearer tok-2"}


def _plain_backend(value: str) -> subprocess.CompletedProcess:
    # The settings module alone: loading every app (django.setup) adds a second per process and
    # nothing this reads.
    code = "from django.conf import settings; print(settings.SANDBOX_BACKENDS['plain'])"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tutorial.settings", "TUTORIAL_PLAIN_BACKEND": value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_plain_backend_is_chosen_by_a_setting():
    assert _plain_backend("pod").stdout.strip() == "sandbox.backends.pod.PodBackend"
    assert _plain_backend("").stdout.strip() == "sandbox.backends.docker.DockerBackend"
    wrong = _plain_backend("podman")
    assert wrong.returncode != 0 and "TUTORIAL_PLAIN_BACKEND must be 'docker' or 'pod'" in wrong.stderr
