"""Pure builders for the Kubernetes workspace: no cluster calls, unit-tested and schema-validated.

One sandbox is one namespace. Everything a learner may and may not do there is decided here, in
one place, so a test can read it back (SECURITY.md, "Kubernetes namespace per sandbox"):

- the namespace carries the sandbox labels and Pod Security ``restricted`` (enforce, warn, audit,
  pinned version): kind nodes run privileged, so a pod escape would be host root;
- ServiceAccount ``learner`` gets a short-lived token (TokenRequest); ``default`` mounts none;
- a Role with exactly :data:`LEARNER_RULES`, bound to ``learner`` and to nothing else;
- ResourceQuota (no NodePort or LoadBalancer services), LimitRange defaults and maxima;
- a default-deny NetworkPolicy that allows DNS and traffic inside the namespace.

The console is a toolbox with ``kubectl`` and a kubeconfig that holds only this namespace's
credentials: a container on the host's Docker engine (``toolbox_container_config``, attached to the
Docker network that reaches the API server), or a pod in the install's tools namespace
(``toolbox_pod_manifest``, whose NetworkPolicy ``toolbox_pods_policy`` lets it reach the API server
and nothing else). Either has a plain sandbox's hardening.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import uuid
from urllib.parse import urlsplit

import yaml

from .base import LABEL_INSTALL, LABEL_ROLE, LABEL_SANDBOX, LABEL_WORKSPACE, ROLE_CONSOLE, SandboxSpec, sandbox_labels
from .manifests import CONSOLE_SHELL_LOOP, SANDBOX_HOME, SANDBOX_USER, sandbox_container_config

NAMESPACE_PREFIX = "tutorial-"
LEARNER_ACCOUNT = "learner"
LEARNER_ROLE = "learner"
POLICY_NAME = "tutorial-sandbox"
KUBECONFIG_PATH = f"{SANDBOX_HOME}/.kube/config"
MIN_TOKEN_SECONDS = 600  # the API server refuses shorter TokenRequests

# What the learner may do in their own namespace: exactly this, nothing more (SECURITY.md).
# Never: namespaces, resourcequotas, limitranges, networkpolicies, roles, rolebindings, escalate,
# bind, impersonate. `deployments/scale` is the subresource `kubectl scale` writes;
# horizontalpodautoscalers are for the dynamic-scaling lesson (the autoscaler itself acts with the
# controller manager's own account, so the learner gains no power over pods through it).
EDIT_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
READ_VERBS = ("get", "list", "watch")
LEARNER_RULES: tuple[dict, ...] = (
    {"apiGroups": [""], "resources": ["pods", "services", "endpoints", "configmaps", "secrets"], "verbs": list(EDIT_VERBS)},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list"]},
    # exec and port-forward: `create` over SPDY, `get` over websockets (kubectl >= 1.30).
    {"apiGroups": [""], "resources": ["pods/exec", "pods/portforward"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": list(READ_VERBS)},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": list(EDIT_VERBS)},
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "update", "patch"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": list(EDIT_VERBS)},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": list(EDIT_VERBS)},
)
FORBIDDEN_RESOURCES = frozenset({
    "namespaces", "resourcequotas", "limitranges", "networkpolicies", "roles", "rolebindings",
    "clusterroles", "clusterrolebindings", "nodes", "serviceaccounts/token",
})
FORBIDDEN_VERBS = frozenset({"escalate", "bind", "impersonate", "*"})

DEFAULT_QUOTA = {
    "pods": "20",
    "requests.cpu": "2",
    "requests.memory": "2Gi",
    "limits.cpu": "4",
    "limits.memory": "4Gi",
    "requests.storage": "1Gi",
    "persistentvolumeclaims": "2",
    "services": "10",
    "services.nodeports": "0",
    "services.loadbalancers": "0",
    "configmaps": "20",
    "secrets": "20",
}
DEFAULT_LIMITS = {
    "default": {"cpu": "200m", "memory": "128Mi"},
    "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
    "max": {"cpu": "1", "memory": "512Mi"},
}

_POD_SECURITY_VERSION = re.compile(r"^(latest|v1\.\d+)$")


def namespace_name(sandbox_id: str, prefix: str = NAMESPACE_PREFIX) -> str:
    """The namespace of a sandbox: the prefix and the sandbox's UUID (a valid DNS-1123 label).

    Raises ``ValueError`` for anything that is not a UUID: a namespace name is derived from it, and
    two different inputs must never map to the same namespace."""
    canonical = str(uuid.UUID(str(sandbox_id)))
    if canonical != str(sandbox_id):
        raise ValueError(f"sandbox id {sandbox_id!r} is not a canonical lowercase UUID")
    name = f"{prefix}{canonical}"
    if len(name) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name):
        raise ValueError(f"namespace prefix {prefix!r} makes an invalid namespace name {name!r}")
    return name


def _meta(spec: SandboxSpec, name: str, namespace: str | None = None) -> dict:
    meta = {"name": name, "labels": sandbox_labels(spec)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def namespace_manifest(spec: SandboxSpec, *, pod_security_version: str, prefix: str = NAMESPACE_PREFIX) -> dict:
    if not _POD_SECURITY_VERSION.match(pod_security_version):
        raise ValueError(f"Pod Security version must look like 'v1.31' (or 'latest'), not {pod_security_version!r}")
    labels = sandbox_labels(spec)
    for mode in ("enforce", "warn", "audit"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = pod_security_version
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace_name(spec.sandbox_id, prefix), "labels": labels},
    }


def learner_service_account(spec: SandboxSpec, namespace: str) -> dict:
    # Its token is requested by the server (TokenRequest) for the toolbox; pods never mount it.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(spec, LEARNER_ACCOUNT, namespace),
        "automountServiceAccountToken": False,
    }


def default_service_account(spec: SandboxSpec, namespace: str) -> dict:
    """The namespace's ``default`` account with no token mounted into the learner's pods."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(spec, "default", namespace),
        "automountServiceAccountToken": False,
    }


def learner_role(spec: SandboxSpec, namespace: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(spec, LEARNER_ROLE, namespace),
        "rules": [dict(rule, apiGroups=list(rule["apiGroups"]), resources=list(rule["resources"]), verbs=list(rule["verbs"]))
                  for rule in LEARNER_RULES],
    }


def learner_role_binding(spec: SandboxSpec, namespace: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(spec, LEARNER_ROLE, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEARNER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": LEARNER_ACCOUNT, "namespace": namespace}],
    }


def resource_quota(spec: SandboxSpec, namespace: str, hard: dict[str, str] | None = None) -> dict:
    hard = dict(DEFAULT_QUOTA if hard is None else hard)
    # Whatever the operator configures, no service may open a port on the nodes.
    hard["services.nodeports"] = "0"
    hard["services.loadbalancers"] = "0"
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(spec, POLICY_NAME, namespace),
        "spec": {"hard": {key: str(value) for key, value in hard.items()}},
    }


def limit_range(spec: SandboxSpec, namespace: str, limits: dict[str, dict[str, str]] | None = None) -> dict:
    limits = DEFAULT_LIMITS if limits is None else limits
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta(spec, POLICY_NAME, namespace),
        "spec": {"limits": [{"type": "Container", **{key: dict(value) for key, value in limits.items()}}]},
    }


def network_policy(spec: SandboxSpec, namespace: str) -> dict:
    """Default deny, both ways, except traffic between this namespace's pods and DNS lookups."""
    same_namespace = {"podSelector": {}}
    cluster_dns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec, POLICY_NAME, namespace),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [same_namespace]}],
            "egress": [
                {"to": [same_namespace]},
                {"to": [cluster_dns], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            ],
        },
    }


def namespace_objects(spec: SandboxSpec, namespace: str, *, quota: dict | None = None, limits: dict | None = None) -> list[dict]:
    """Every namespaced object a sandbox gets, in the order they are created."""
    return [
        learner_service_account(spec, namespace),
        default_service_account(spec, namespace),
        learner_role(spec, namespace),
        learner_role_binding(spec, namespace),
        resource_quota(spec, namespace, quota),
        limit_range(spec, namespace, limits),
        network_policy(spec, namespace),
    ]


def token_request(seconds: int) -> dict:
    """A TokenRequest for the learner's account, valid ``seconds`` (at least ten minutes)."""
    if seconds < MIN_TOKEN_SECONDS:
        raise ValueError(f"a learner token must live at least {MIN_TOKEN_SECONDS} seconds, not {seconds}")
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": int(seconds), "audiences": []},
    }


def learner_kubeconfig(*, server: str, namespace: str, token: str, ca_data: bytes | None, insecure: bool = False) -> dict:
    """The toolbox's kubeconfig: one cluster, one user (the learner's token), one namespace.

    It holds nothing of the server's own credentials. ``ca_data`` is the cluster CA in PEM."""
    cluster: dict = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode("ascii")
    elif insecure:
        cluster["insecure-skip-tls-verify"] = True
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "classroom", "cluster": cluster}],
        "users": [{"name": LEARNER_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "classroom", "user": LEARNER_ACCOUNT, "namespace": namespace}}],
        "current-context": "sandbox",
        "preferences": {},
    }


def kubeconfig_install_script(kubeconfig: dict) -> str:
    """A shell script that writes the kubeconfig into the toolbox's tmpfs home, readable only by
    the learner. Base64 keeps the script free of quoting problems."""
    encoded = base64.b64encode(yaml.safe_dump(kubeconfig, sort_keys=False).encode()).decode("ascii")
    return (
        "umask 077 && mkdir -p \"$HOME/.kube\" && "
        f"echo '{encoded}' | base64 -d > \"$HOME/.kube/config.tmp\" && "
        "mv \"$HOME/.kube/config.tmp\" \"$HOME/.kube/config\""
    )


def toolbox_container_config(spec: SandboxSpec, *, network: str, registry: str = "") -> dict:
    """The console container: a plain sandbox's hardening, plus kubectl's environment and the
    Docker network that reaches the cluster's API (kind's ``kind`` network on one machine).

    Unlike a plain sandbox it has a network: the API server is not reachable otherwise. It is
    still never the host network."""
    if network == "host" or network.startswith("container:"):
        raise ValueError(f"the toolbox may not use the {network!r} network mode")
    config = sandbox_container_config(spec)
    config["network_mode"] = network
    config["environment"] = dict(
        config["environment"],
        KUBECONFIG=KUBECONFIG_PATH,
        # Lesson manifests name their images as $REGISTRY/...: the classroom registry as the
        # cluster's nodes reach it.
        REGISTRY=registry,
    )
    config["labels"] = dict(config["labels"])
    return config


_STUCK_REASONS = {
    "ErrImagePull": "cannot pull its image {image}",
    "ImagePullBackOff": "cannot pull its image {image}",
    "InvalidImageName": "names an invalid image {image}",
    "CrashLoopBackOff": "keeps crashing and is being restarted",
    "CreateContainerConfigError": "cannot be started with its configuration",
    "RunContainerError": "cannot be started",
}


def explain_pod(pod: dict) -> list[str]:
    """Sentences that tell a learner why a pod's containers are stuck (pure: takes the pod as a
    dict, with either the API's camelCase or the Python client's snake_case keys)."""

    def get(obj, *keys):
        for key in keys:
            if isinstance(obj, dict) and obj.get(key) is not None:
                return obj[key]
        return None

    name = get(get(pod, "metadata") or {}, "name") or "?"
    status = get(pod, "status") or {}
    problems = []
    for container in (get(status, "initContainerStatuses", "init_container_statuses") or []) + (
        get(status, "containerStatuses", "container_statuses") or []
    ):
        waiting = get(get(container, "state") or {}, "waiting") or {}
        reason = get(waiting, "reason")
        if reason in _STUCK_REASONS:
            what = _STUCK_REASONS[reason].format(image=get(container, "image") or "?")
            message = get(waiting, "message")
            detail = f": {message}" if message else ""
            problems.append(f"Pod {name}, container {get(container, 'name')} {what} ({reason}){detail}")
    return problems


def owns(labels: dict | None, sandbox_id: str) -> bool:
    """Does an object with these labels belong to this sandbox?"""
    return bool(labels) and labels.get(LABEL_SANDBOX) == sandbox_id


# -- plain sandboxes as pods (sandbox.backends.pod) -----------------------------------------------
SANDBOX_POD_NAMESPACE = "tutorial-sandboxes"
SANDBOX_CONTAINER = "shell"
CONSOLE_TTY = "/dev/console"  # the container's TTY (``tty: true``), writable by its user
# Kubernetes' Pod Security `restricted` lets a pod add this capability and no other.
POD_ALLOWED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SANDBOX_POD_CPU_REQUEST = "10m"
SANDBOX_POD_MEMORY_REQUEST = "32Mi"


def sandbox_pod_name(sandbox_id: str) -> str:
    """The console pod of a plain sandbox (a valid DNS-1123 name; the id must be a canonical UUID)."""
    canonical = str(uuid.UUID(str(sandbox_id)))
    if canonical != str(sandbox_id):
        raise ValueError(f"sandbox id {sandbox_id!r} is not a canonical lowercase UUID")
    return f"tutorial-sbx-{canonical}"


def sandbox_pods_namespace_manifest(name: str, *, install: str, pod_security_version: str) -> dict:
    """The namespace plain sandbox pods run in, shared by the install's sandboxes: Pod Security
    ``restricted`` enforced, so the API server itself refuses a pod that breaks the hardening."""
    if not _POD_SECURITY_VERSION.match(pod_security_version):
        raise ValueError(f"Pod Security version must look like 'v1.31' (or 'latest'), not {pod_security_version!r}")
    labels = {"app.kubernetes.io/part-of": "tutorial", LABEL_INSTALL: install}
    for mode in ("enforce", "warn", "audit"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = pod_security_version
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def install_policy_name(purpose: str, install: str) -> str:
    """The one NetworkPolicy name an install has for ``purpose`` in a namespace
    (``tutorial-sandboxes-deny-<install>``, ``tutorial-toolboxes-<install>``)."""
    return f"tutorial-{purpose}-{install}"[:63].rstrip("-._")


def sandbox_pods_deny_policy(namespace: str, *, install: str) -> dict:
    """Default deny, both ways, for every sandbox pod of this install: a plain sandbox has no
    network at all (Docker's ``network_mode: none``). No rule: nothing in, nothing out, not DNS."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": install_policy_name("sandboxes-deny", install), "namespace": namespace,
                     "labels": {LABEL_INSTALL: install}},
        "spec": {
            "podSelector": {"matchExpressions": [{"key": LABEL_SANDBOX, "operator": "Exists"}],
                            "matchLabels": {LABEL_INSTALL: install}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }


def _millicpu(nano_cpus: int) -> str:
    return f"{max(1, nano_cpus // 1_000_000)}m"


def sandbox_pod_manifest(spec: SandboxSpec, *, namespace: str, image: str) -> dict:
    """A plain sandbox as one pod: the Docker container's hardening in Kubernetes terms.

    - Pod Security ``restricted``: non-root (1000:1000), no privilege escalation, every capability
      dropped (a lesson may add back only ``NET_BIND_SERVICE``), the runtime's seccomp profile;
    - no service-account token and no Service environment variables: the pod knows nothing of the
      cluster;
    - read-only root; home and /tmp are memory-backed ``emptyDir`` volumes with size limits;
    - CPU and memory limits; small requests, so a class of mostly idle shells fits on one node;
    - the process namespace is shared, so the pause container is PID 1 and reaps zombies (Docker's
      ``init``); ``restartPolicy: Never``: a pod whose shell loop ended is exited, as a container is.

    The TTY is the container's own (``tty``, ``stdin``): every viewer attaches to the same shell.
    Pod-level pids limits are the kubelet's (``podPidsLimit``), not the pod's to set."""
    unknown = set(spec.capabilities) - POD_ALLOWED_CAPABILITIES
    if unknown:
        raise ValueError(f"capabilities not allowed for sandbox pods (Pod Security restricted): {', '.join(sorted(unknown))}")
    uid, gid = (int(part) for part in SANDBOX_USER.split(":"))
    limits = spec.limits
    memory = str(limits.memory_bytes)
    labels = {**sandbox_labels(spec), LABEL_ROLE: ROLE_CONSOLE}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": sandbox_pod_name(spec.sandbox_id), "namespace": namespace, "labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "hostname": "sandbox",
            "restartPolicy": "Never",
            "shareProcessNamespace": True,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid, "fsGroup": gid,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": SANDBOX_CONTAINER,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c", CONSOLE_SHELL_LOOP],
                "tty": True,
                "stdin": True,
                "workingDir": SANDBOX_HOME,
                "env": [{"name": k, "value": v} for k, v in (
                    ("TERM", "xterm-256color"), ("HOME", SANDBOX_HOME), ("USER", "learner"),
                    ("ENV", "/etc/profile"), ("TUTORIAL_LESSON", spec.lesson))],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"], **({"add": sorted(spec.capabilities)} if spec.capabilities else {})},
                },
                "resources": {
                    "limits": {"cpu": _millicpu(limits.nano_cpus), "memory": memory},
                    # Small requests: a class of idle shells shares a node, as containers share
                    # the Docker engine; a request of a quarter CPU fits only 8 sandboxes on 2 cores.
                    "requests": {"cpu": SANDBOX_POD_CPU_REQUEST, "memory": SANDBOX_POD_MEMORY_REQUEST},
                },
                "volumeMounts": [{"name": "home", "mountPath": SANDBOX_HOME}, {"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [
                {"name": "home", "emptyDir": {"medium": "Memory", "sizeLimit": str(limits.tmpfs_home_bytes)}},
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": str(limits.tmpfs_tmp_bytes)}},
            ],
        },
    }


def pod_image(image: str, registry: str) -> str:
    """A sandbox image as the cluster's nodes pull it: ``tutorial/base:latest`` from the classroom
    registry ``localhost:5000`` is ``localhost:5000/tutorial/base:latest``. An image that already
    names a registry (a dot or a colon before its first slash) is left as it is."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"{registry.rstrip('/')}/{image}" if registry else image


# -- Kubernetes-lesson toolboxes as pods (sandbox.backends.toolboxes) -----------------------------
TOOLS_NAMESPACE = "tutorial-tools"


def toolbox_pod_manifest(spec: SandboxSpec, *, namespace: str, image: str, registry: str = "") -> dict:
    """The console of a Kubernetes lesson as a pod: a plain sandbox pod's hardening (Pod Security
    ``restricted``, non-root, no service-account token, read-only root, memory-backed home and
    /tmp, limits) plus kubectl's environment. Its only credential is the learner's kubeconfig,
    written into the home by exec after it starts; the pod itself holds none."""
    manifest = sandbox_pod_manifest(spec, namespace=namespace, image=image)
    container = manifest["spec"]["containers"][0]
    # Lesson manifests name their images as $REGISTRY/...: the classroom registry as the nodes reach it.
    container["env"] += [{"name": "KUBECONFIG", "value": KUBECONFIG_PATH}, {"name": "REGISTRY", "value": registry}]
    manifest["spec"]["hostname"] = "toolbox"
    return manifest


def api_server_endpoints(server: str, endpoint_slices: list[dict] = ()) -> list[tuple[str, int]]:
    """Where a pod reaches the API server, as ``(IPv4 or IPv6 address, port)`` pairs: the learner's
    server address when it is an IP literal (with its port), and every ready address of the
    ``default/kubernetes`` Service's EndpointSlices (the address a Service IP is translated to,
    which is what most CNIs match NetworkPolicy against)."""
    found: list[tuple[str, int]] = []
    parts = urlsplit(server)
    try:
        address = ipaddress.ip_address(parts.hostname or "")
        found.append((str(address), parts.port or 443))
    except ValueError:
        pass  # a host name: the EndpointSlices say where it leads
    for endpoint_slice in endpoint_slices:
        ports = [p.get("port") for p in endpoint_slice.get("ports") or [] if p.get("port")]
        for endpoint in endpoint_slice.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for text in endpoint.get("addresses") or []:
                try:
                    address = ipaddress.ip_address(text)
                except ValueError:
                    continue
                found += [(str(address), int(port)) for port in ports]
    return sorted(set(found))


def toolbox_pods_policy(namespace: str, *, install: str, api_endpoints: list[tuple[str, int]]) -> dict:
    """The install's toolbox pods may reach the API server and nothing else: no ingress at all,
    egress only to ``api_endpoints`` (one ``/32`` or ``/128`` with its TCP port each). No DNS:
    the learner's kubeconfig names the API server by address. Raises ``ValueError`` without an
    endpoint (a toolbox that can reach nothing is no console)."""
    if not api_endpoints:
        raise ValueError("no address of the API server is known for the toolboxes' network policy")
    egress = []
    for address, port in api_endpoints:
        ip = ipaddress.ip_address(address)
        if not 0 < int(port) < 65536:
            raise ValueError(f"port {port} of the API server is out of range")
        egress.append({"to": [{"ipBlock": {"cidr": f"{ip}/{ip.max_prefixlen}"}}],
                       "ports": [{"protocol": "TCP", "port": int(port)}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": install_policy_name("toolboxes", install), "namespace": namespace,
                     "labels": {LABEL_INSTALL: install}},
        "spec": {
            # Toolboxes only: were the tools namespace the plain sandboxes' too, their pods would
            # keep their own deny-all policy and gain no path to the API server from this one.
            "podSelector": {"matchExpressions": [{"key": LABEL_SANDBOX, "operator": "Exists"}],
                            "matchLabels": {LABEL_INSTALL: install, LABEL_WORKSPACE: "kubernetes"}},
            "policyTypes": ["Ingress", "Egress"],
            "egress": egress,
        },
    }
