"""deploy/kubernetes, read as the API server would get it: valid objects, the security model of the
site's own pods (no Docker socket, no host paths, non-root, read-only root, limits), probes on
/healthz, one active reaper by Lease, and RBAC that never grants what the site does not create."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from sandbox.backends import k8s_manifests as km

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
K8S_SCHEMA_VERSION = "1.31"


# libyaml's safe loader where PyYAML has it: the same objects, and most tests here read them all.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def objects() -> list[dict]:
    found = []
    for folder in ("site", "sandboxes"):
        kustomization = yaml.load((DEPLOY / folder / "kustomization.yaml").read_text(), Loader=SAFE_LOADER)
        for name in kustomization["resources"]:
            found += [obj for obj in yaml.load_all((DEPLOY / folder / name).read_text(), Loader=SAFE_LOADER) if obj]
    return found


def of_kind(kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects() if obj["kind"] == kind}


def pod_specs() -> dict[str, dict]:
    return {name: obj["spec"]["template"]["spec"] for name, obj in of_kind("Deployment").items()}


def test_every_object_is_valid_for_the_api_server():
    for obj in objects():
        assert kubernetes_validate.validate(obj, K8S_SCHEMA_VERSION, strict=True) == K8S_SCHEMA_VERSION, obj["kind"]


def test_the_example_ingress_is_valid_and_not_applied():
    ingress = yaml.safe_load((DEPLOY / "examples" / "ingress.yaml").read_text())
    kubernetes_validate.validate(ingress, K8S_SCHEMA_VERSION, strict=True)
    assert "Ingress" not in {obj["kind"] for obj in objects()}


def test_every_part_is_deployed():
    assert set(pod_specs()) == {"site", "reaper", "postgres", "redis", "registry"}
    assert set(of_kind("Service")) == {"site", "postgres", "redis", "registry"}
    assert of_kind("Deployment")["site"]["spec"]["replicas"] >= 2
    assert of_kind("PodDisruptionBudget")["site"]["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("name", ["site", "reaper", "postgres", "redis", "registry"])
def test_no_pod_has_a_docker_socket_a_host_path_or_privilege(name):
    spec = pod_specs()[name]
    assert not any(key in spec for key in ("hostNetwork", "hostPID", "hostIPC"))
    assert all("hostPath" not in volume for volume in spec.get("volumes", []))
    assert "docker.sock" not in yaml.safe_dump(spec)
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec.get("initContainers", []) + spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]} and not context.get("privileged")
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
        assert container["image"] == "tutorial-site"  # one image, its tag set by deploy-cluster.sh


def test_only_the_site_and_the_reaper_get_an_api_token():
    for name, spec in pod_specs().items():
        if name in ("site", "reaper"):
            assert spec["serviceAccountName"] == "site"
        else:
            assert spec["automountServiceAccountToken"] is False


def test_the_site_is_probed_on_healthz_with_an_allowed_host():
    container = pod_specs()["site"]["containers"][0]
    allowed = of_kind("ConfigMap")["tutorial-env"]["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
    for probe in (container["readinessProbe"], container["livenessProbe"]):
        assert probe["httpGet"]["path"] == "/healthz"
        host = {h["name"]: h["value"] for h in probe["httpGet"]["httpHeaders"]}["Host"]
        assert host in allowed


def test_one_reaper_is_active_through_a_lease_it_may_take():
    config = of_kind("ConfigMap")["tutorial-env"]["data"]
    reaper = pod_specs()["reaper"]["containers"][0]
    assert reaper["command"][-2:] == ["reap_sandboxes", "--loop"] and config["TUTORIAL_REAPER_LEASE"]
    env = {item["name"] for item in reaper["env"]}
    assert {"POD_NAME", "POD_NAMESPACE"} <= env
    rule = of_kind("Role")["reaper-lease"]["rules"][0]
    assert rule["resources"] == ["leases"] and set(rule["verbs"]) == {"get", "create", "update"}


def test_the_site_runs_without_a_docker_engine_and_sandboxes_as_pods():
    config = of_kind("ConfigMap")["tutorial-env"]["data"]
    assert config["TUTORIAL_PLAIN_BACKEND"] == "pod" and config["TUTORIAL_DOCKER_ENGINE"] == "0"
    sandboxes = of_kind("Namespace")[config["TUTORIAL_SANDBOX_NAMESPACE"]]["metadata"]["labels"]
    assert sandboxes["pod-security.kubernetes.io/enforce"] == "restricted"


def test_kubernetes_lessons_consoles_are_pods_in_a_restricted_tools_namespace():
    config = of_kind("ConfigMap")["tutorial-env"]["data"]
    assert config["TUTORIAL_KUBERNETES_TOOLBOX"] == "pod"
    tools = of_kind("Namespace")[config["TUTORIAL_TOOLS_NAMESPACE"]]["metadata"]["labels"]
    assert tools["pod-security.kubernetes.io/enforce"] == "restricted"
    granted = {(group, resource, verb) for rule in of_kind("ClusterRole")["tutorial-site"]["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]}
    # The toolbox pods, their console and kubeconfig (exec), their policy, the API server's addresses.
    for need in [("", "pods", "create"), ("", "pods", "list"), ("", "pods/attach", "create"), ("", "pods/exec", "create"),
                 ("networking.k8s.io", "networkpolicies", "patch"), ("discovery.k8s.io", "endpointslices", "list")]:
        assert need in granted, need


def test_rbac_grants_what_the_backends_create_and_nothing_forbidden():
    rules = of_kind("ClusterRole")["tutorial-site"]["rules"]
    granted = {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    # Plain sandbox pods: create, console over attach, checks over exec, their NetworkPolicy.
    for need in [("", "pods", "create"), ("", "pods", "delete"), ("", "pods/attach", "create"),
                 ("", "pods/exec", "create"), ("", "pods/log", "get"),
                 ("networking.k8s.io", "networkpolicies", "create"), ("", "namespaces", "create"),
                 ("", "serviceaccounts/token", "create"), ("rbac.authorization.k8s.io", "roles", "create")]:
        assert need in granted, need
    # Everything the learner's Role grants is held (Kubernetes refuses to grant more than one holds).
    for rule in km.LEARNER_RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert (group, resource, verb) in granted, (group, resource, verb)
    assert not {verb for _, _, verb in granted} & {"escalate", "bind", "impersonate", "*"}
    assert not {resource for _, resource, _ in granted} & {"nodes", "clusterroles", "clusterrolebindings", "*"}


def test_the_site_replicas_and_the_reaper_keep_saved_homes_in_the_database():
    # Each of them has its own emptyDir DATA_DIR: a home kept there is invisible to the others.
    config_map = of_kind("ConfigMap")["tutorial-env"]
    assert config_map["data"]["TUTORIAL_HOME_FILES_STORE"] == "database"
    for name in ("site", "reaper"):
        for container in pod_specs()[name]["containers"]:
            assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in container["envFrom"]
            assert "TUTORIAL_HOME_FILES_STORE" not in {item["name"] for item in container.get("env", [])}
