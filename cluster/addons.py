"""What the cluster holds from its start: CoreDNS (Service ``kube-dns``) and a guard on tokens.

Applied with the cluster's own ``kubectl apply --server-side``, so applying again changes only
what differs.
"""

from __future__ import annotations

import subprocess

import yaml

from .build import image_reference
from .layout import DNS_SERVICE_IP, Layout

DNS_LABELS = {"k8s-app": "kube-dns"}


def corefile(domain: str) -> str:
    # Names of the cluster are answered; every other name is NXDOMAIN at once: pods have no way
    # out of this machine, so there is nothing to forward to.
    return f"""{domain}:53 in-addr.arpa:53 ip6.arpa:53 {{
    errors
    health {{
        lameduck 2s
    }}
    ready
    kubernetes {domain} in-addr.arpa ip6.arpa {{
        pods insecure
        ttl 30
    }}
    cache 30
    loadbalance
}}
.:53 {{
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


def coredns_objects(layout: Layout) -> list[dict]:
    ns, name = "kube-system", "coredns"
    restricted_container = {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
         "rules": [
             {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
         "data": {"Corefile": corefile(layout.domain)}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "labels": DNS_LABELS},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": DNS_LABELS},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
             "template": {
                 "metadata": {"labels": DNS_LABELS},
                 "spec": {
                     "serviceAccountName": name,
                     "priorityClassName": "system-cluster-critical",
                     "dnsPolicy": "Default",
                     "securityContext": {
                         "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                         "seccompProfile": {"type": "RuntimeDefault"},
                         # Port 53 without any capability.
                         "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}],
                     },
                     "containers": [{
                         "name": name, "image": image_reference(layout, "coredns"), "imagePullPolicy": "IfNotPresent",
                         "args": ["-conf", "/etc/coredns/Corefile"],
                         "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                   {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"}],
                         "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                         "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 30,
                                           "periodSeconds": 10, "failureThreshold": 5},
                         "securityContext": restricted_container,
                         "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                     }],
                     "volumes": [{"name": "config", "configMap": {"name": name}}],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": ns, "labels": DNS_LABELS},
         "spec": {"selector": DNS_LABELS, "clusterIP": DNS_SERVICE_IP,
                  "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}},
    ]


def token_guard_objects() -> list[dict]:
    """Learners may create Secrets; none of them may be a long-lived service-account token, which
    would outlive the short token their console holds."""
    name = "tutorial-no-token-secrets"
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
         "spec": {
             "failurePolicy": "Fail",
             "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                     "operations": ["CREATE", "UPDATE"], "resources": ["secrets"]}]},
             "validations": [{
                 "expression": "!has(object.type) || object.type != 'kubernetes.io/service-account-token'",
                 "message": "service-account token Secrets are not allowed in a tutorial namespace: "
                            "your console's kubeconfig already holds a token",
             }],
         }},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
         "spec": {"policyName": name, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchExpressions": [{"key": "tutorial.sandbox", "operator": "Exists"}]}}}},
    ]


def apply(layout: Layout, objects: list[dict], timeout: float = 60) -> None:
    document = "\n---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)
    result = subprocess.run(
        [str(layout.program("kubectl")), f"--kubeconfig={layout.admin_kubeconfig}", "apply", "--server-side",
         "--force-conflicts", "--field-manager=tutorial-cluster", "-f", "-"],
        input=document, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl apply failed: {result.stderr.strip() or result.stdout.strip()}")


def all_objects(layout: Layout) -> list[dict]:
    return [*coredns_objects(layout), *token_guard_objects()]
