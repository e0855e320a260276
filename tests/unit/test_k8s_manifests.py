"""The Kubernetes workspace's pure builders: schema-valid objects and exactly the allowed RBAC."""

from __future__ import annotations

import base64
import subprocess
import uuid

import kubernetes_validate
import pytest
import yaml

from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import LABEL_SANDBOX, Limits, SandboxSpec

K8S_SCHEMA_VERSION = "1.31"  # the cluster version the objects are validated against (pinned)
SANDBOX_ID = "0b7c3a52-5d7e-4f43-a3a4-1f0f7a3b9c11"


@pytest.fixture
def spec() -> SandboxSpec:
    return SandboxSpec(sandbox_id=SANDBOX_ID, owner_id=7, owner_name="ada", lesson="pods",
                       workspace="kubernetes", image="tutorial/toolbox:latest", limits=Limits())


def every_object(spec) -> list[dict]:
    namespace = km.namespace_name(spec.sandbox_id)
    return [
        km.namespace_manifest(spec, pod_security_version="v1.31"),
        *km.namespace_objects(spec, namespace),
        km.token_request(3600),
    ]


def test_every_object_is_valid_against_the_kubernetes_openapi_schema(spec):
    for obj in every_object(spec):
        # strict: no field the API server would drop or refuse
        assert kubernetes_validate.validate(obj, K8S_SCHEMA_VERSION, strict=True) == K8S_SCHEMA_VERSION, obj["kind"]


def test_schema_validation_would_catch_a_wrong_field(spec):
    role = km.learner_role(spec, "tutorial-x")
    role["rules"][0]["resource"] = role["rules"][0].pop("resources")  # a typo the server would drop
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(role, K8S_SCHEMA_VERSION, strict=True)


def test_every_object_carries_the_sandbox_labels_and_lives_in_its_namespace(spec):
    namespace = km.namespace_name(spec.sandbox_id)
    for obj in every_object(spec)[:-1]:
        labels = obj["metadata"]["labels"]
        assert labels[LABEL_SANDBOX] == SANDBOX_ID
        assert labels["tutorial.owner"] == "7" and labels["tutorial.lesson"] == "pods"
        assert labels["tutorial.workspace"] == "kubernetes"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace


def test_namespace_enforces_pod_security_restricted_at_a_pinned_version(spec):
    labels = km.namespace_manifest(spec, pod_security_version="v1.31")["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.31"
    with pytest.raises(ValueError, match="Pod Security version"):
        km.namespace_manifest(spec, pod_security_version="1.31; drop")


def test_namespace_names_come_only_from_canonical_uuids():
    assert km.namespace_name(SANDBOX_ID) == f"tutorial-{SANDBOX_ID}"
    assert len(km.namespace_name(str(uuid.uuid4()))) <= 63
    # Inputs that could make two sandboxes share a namespace, or make an invalid name, are refused.
    for bad in ("kube-system", SANDBOX_ID.upper(), SANDBOX_ID.replace("-", ""), f"{SANDBOX_ID}/x", ""):
        with pytest.raises(ValueError):
            km.namespace_name(bad)
    with pytest.raises(ValueError, match="invalid namespace name"):
        km.namespace_name(SANDBOX_ID, prefix="Tutorial_")


def test_the_role_grants_exactly_the_allowed_set_and_nothing_more(spec):
    role = km.learner_role(spec, "ns")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    edit = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
    expected = (
        {("", r, v) for r in ("pods", "services", "endpoints", "configmaps", "secrets") for v in edit}
        | {("", "pods/log", "get"), ("", "pods/log", "list")}
        | {("", r, v) for r in ("pods/exec", "pods/portforward") for v in ("get", "create")}
        | {("", "events", v) for v in ("get", "list", "watch")}
        | {("apps", r, v) for r in ("deployments", "replicasets") for v in edit}
        | {("apps", "deployments/scale", v) for v in ("get", "update", "patch")}
        | {("batch", "jobs", v) for v in edit}
        | {("autoscaling", "horizontalpodautoscalers", v) for v in edit}
    )
    assert granted == expected
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}  # no resourceNames, no nonResourceURLs
        assert not set(rule["verbs"]) & km.FORBIDDEN_VERBS
        assert not set(rule["resources"]) & km.FORBIDDEN_RESOURCES
        assert "*" not in rule["apiGroups"] and "*" not in rule["resources"]


def test_the_binding_names_only_the_learner_account_of_this_namespace(spec):
    binding = km.learner_role_binding(spec, "tutorial-ns")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "learner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "learner", "namespace": "tutorial-ns"}]


def test_no_account_mounts_a_token_into_pods(spec):
    learner = km.learner_service_account(spec, "ns")
    default = km.default_service_account(spec, "ns")
    assert learner["metadata"]["name"] == "learner" and default["metadata"]["name"] == "default"
    assert learner["automountServiceAccountToken"] is False
    assert default["automountServiceAccountToken"] is False


def test_quota_forbids_node_ports_and_load_balancers_whatever_is_configured(spec):
    hard = km.resource_quota(spec, "ns", {"pods": 3, "services.nodeports": "5", "services.loadbalancers": "2"})["spec"]["hard"]
    assert hard == {"pods": "3", "services.nodeports": "0", "services.loadbalancers": "0"}
    default = km.resource_quota(spec, "ns")["spec"]["hard"]
    for key in ("pods", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "requests.storage"):
        assert key in default


def test_limit_range_gives_containers_defaults_and_maxima(spec):
    (limit,) = km.limit_range(spec, "ns")["spec"]["limits"]
    assert limit["type"] == "Container"
    assert {"default", "defaultRequest", "max"} <= set(limit)


def test_network_policy_denies_by_default_and_allows_dns_and_the_namespace(spec):
    policy = km.network_policy(spec, "ns")["spec"]
    assert policy["podSelector"] == {} and policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [{"from": [{"podSelector": {}}]}]
    same_namespace, dns = policy["egress"]
    assert same_namespace == {"to": [{"podSelector": {}}]}
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    # Nothing else: no ipBlock, no other namespace.
    assert "ipBlock" not in str(policy)


def test_token_requests_are_short_lived_but_not_shorter_than_the_api_allows():
    assert km.token_request(3600)["spec"]["expirationSeconds"] == 3600
    with pytest.raises(ValueError, match="at least 600"):
        km.token_request(60)


def test_learner_kubeconfig_holds_one_namespace_and_only_the_learner_token():
    config = km.learner_kubeconfig(server="https://kind-control-plane:6443", namespace="tutorial-x",
                                   token="tok", ca_data=b"-----BEGIN CERTIFICATE-----\n")
    assert config["current-context"] == "sandbox"
    assert config["contexts"] == [{"name": "sandbox", "context": {"cluster": "classroom", "user": "learner", "namespace": "tutorial-x"}}]
    assert config["users"] == [{"name": "learner", "user": {"token": "tok"}}]
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://kind-control-plane:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]).startswith(b"-----BEGIN")
    assert "insecure-skip-tls-verify" not in cluster


def test_the_kubeconfig_install_script_round_trips_through_a_real_shell(tmp_path):
    config = km.learner_kubeconfig(server="https://h:6443", namespace="n", token="a'b\"c$(x)", ca_data=None)
    script = km.kubeconfig_install_script(config)
    subprocess.run(["/bin/sh", "-c", script], check=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    written = tmp_path / ".kube" / "config"
    assert yaml.safe_load(written.read_text()) == config
    assert oct(written.stat().st_mode & 0o777) == "0o600"


def test_toolbox_keeps_the_sandbox_hardening_and_joins_only_the_named_network(spec):
    config = km.toolbox_container_config(spec, network="kind", registry="localhost:5000")
    assert config["network_mode"] == "kind"
    assert config["cap_drop"] == ["ALL"] and config["security_opt"] == ["no-new-privileges:true"]
    assert config["read_only"] is True and config["user"] == "1000:1000" and config["tty"] is True
    assert config["environment"]["KUBECONFIG"] == km.KUBECONFIG_PATH
    assert config["environment"]["REGISTRY"] == "localhost:5000"
    assert config["labels"][LABEL_SANDBOX] == SANDBOX_ID
    assert "volumes" not in config or not config["volumes"]  # no host path, no engine socket
    for forbidden in ("host", "container:abc"):
        with pytest.raises(ValueError):
            km.toolbox_container_config(spec, network=forbidden)


def test_owns_compares_the_sandbox_label_exactly():
    assert km.owns({LABEL_SANDBOX: SANDBOX_ID}, SANDBOX_ID)
    assert not km.owns({LABEL_SANDBOX: "other"}, SANDBOX_ID)
    assert not km.owns(None, SANDBOX_ID)
    assert not km.owns({}, SANDBOX_ID)


def test_explain_pod_names_images_that_cannot_be_pulled_and_crash_loops():
    pod = {"metadata": {"name": "web"}, "status": {"containerStatuses": [
        {"name": "web", "image": "localhost:5000/x:1", "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}},
        {"name": "side", "image": "i", "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        {"name": "ok", "image": "i", "state": {"running": {}}},
    ]}}
    assert km.explain_pod(pod) == [
        "Pod web, container web cannot pull its image localhost:5000/x:1 (ErrImagePull): not found",
        "Pod web, container side keeps crashing and is being restarted (CrashLoopBackOff)",
    ]
    snake = {"metadata": {"name": "p"}, "status": {"container_statuses": [
        {"name": "c", "image": "i", "state": {"waiting": {"reason": "ImagePullBackOff", "message": None}}}]}}
    assert km.explain_pod(snake) == ["Pod p, container c cannot pull its image i (ImagePullBackOff)"]
    assert km.explain_pod({"metadata": {"name": "q"}, "status": {}}) == []
