"""The doctor's look at the cluster when sandboxes or Kubernetes-lesson toolboxes are pods.

What a pod sandbox needs, asked of the cluster the way the site would use it, each failure with
its fix: the API answers; the namespace is there with Pod Security ``restricted`` (or the account
may create it); the account may do everything the pod backend does there (each permission asked
with a ``SelfSubjectAccessReview``, so nothing is created to find out); the image is in the
classroom registry the nodes pull from.

:func:`probe` takes the API (anything with ``request(method, path, params, *, body)`` answering
:class:`sandbox.backends.k8s_api.Answer`) and a registry lookup, so it is tested on fakes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

# What sandbox.backends.pod.PodBackend does in its namespace: (verb, resource, subresource).
POD_NAMESPACE_RIGHTS: tuple[tuple[str, str, str], ...] = (
    ("create", "pods", ""), ("get", "pods", ""), ("list", "pods", ""), ("watch", "pods", ""),
    ("delete", "pods", ""), ("deletecollection", "pods", ""), ("get", "pods", "log"),
    ("create", "pods", "attach"), ("create", "pods", "exec"),
    ("create", "networkpolicies", ""), ("patch", "networkpolicies", ""),
)
NETWORKING = "networking.k8s.io"


@dataclasses.dataclass(frozen=True)
class PodWorkload:
    """One kind of pod the site makes: what it is, its namespace, and the images it runs."""

    what: str  # "plain sandboxes", "Kubernetes-lesson toolboxes"
    namespace: str
    images: tuple[str, ...]  # as tagged here, e.g. tutorial/base:latest


@dataclasses.dataclass(frozen=True)
class Problem:
    message: str
    fix: str


def access_review(namespace: str, verb: str, resource: str, subresource: str = "") -> dict:
    group = NETWORKING if resource == "networkpolicies" else ""
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
    if subresource:
        attributes["subresource"] = subresource
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}


async def _allowed(api, review: dict) -> bool | str:
    """True or False from the API; a string when it could not say (why)."""
    answer = await api.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review)
    if answer.status not in (200, 201):
        return f"the access review itself was refused ({answer.status}: {answer.message()})"
    return bool(((answer.json() or {}).get("status") or {}).get("allowed"))


async def probe(api, workloads: list[PodWorkload], image_present: Callable[[str], Awaitable[bool | str]],
                *, source: str) -> tuple[list[Problem], str]:
    """Every problem found (empty when the cluster is ready), and the cluster's version."""
    answer = await api.request("GET", "/version")
    if answer.status != 200:
        return [Problem(f"the Kubernetes API ({source}) answered {answer.status}: {answer.message()}",
                        "Check TUTORIAL_KUBECONFIG (or the site pod's service account) and that the cluster runs.")], ""
    version = (answer.json() or {}).get("gitVersion", "unknown")
    problems: list[Problem] = []
    for workload in workloads:
        namespace = workload.namespace
        found = await api.request("GET", f"/api/v1/namespaces/{namespace}")
        if found.status == 200:
            labels = ((found.json() or {}).get("metadata") or {}).get("labels") or {}
            if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
                problems.append(Problem(
                    f"namespace {namespace} ({workload.what}) does not enforce Pod Security restricted",
                    f"kubectl label namespace {namespace} pod-security.kubernetes.io/enforce=restricted "
                    "(the site labels it itself when its account may patch namespaces)."))
        elif found.status == 404:
            may_create = await _allowed(api, {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                                              "spec": {"resourceAttributes": {"verb": "create", "resource": "namespaces"}}})
            if may_create is not True:
                problems.append(Problem(
                    f"namespace {namespace} ({workload.what}) does not exist and the site's account ({source}) may not create it",
                    "Create it: `kubectl apply -k deploy/kubernetes/sandboxes` (labelled Pod Security restricted), "
                    "or grant the account create on namespaces."))
        else:
            problems.append(Problem(f"namespace {namespace} ({workload.what}) cannot be read: {found.status} {found.message()}",
                                    f"Grant the site's account ({source}) get on namespaces."))
        missing = []
        for verb, resource, subresource in POD_NAMESPACE_RIGHTS:
            allowed = await _allowed(api, access_review(namespace, verb, resource, subresource))
            if isinstance(allowed, str):
                problems.append(Problem(allowed, "Check that the API server serves authorization.k8s.io/v1."))
                break
            if not allowed:
                missing.append(f"{verb} {resource}{'/' + subresource if subresource else ''}")
        if missing:
            problems.append(Problem(
                f"the site's account ({source}) may not, in namespace {namespace} ({workload.what}): {', '.join(missing)}",
                "Apply the site's RBAC (deploy/kubernetes/site/rbac.yaml), or grant exactly those in that namespace "
                "(docs/kubernetes.md lists them)."))
        for image in workload.images:
            present = await image_present(image)
            if present is not True:
                why = f": {present}" if isinstance(present, str) else ""
                problems.append(Problem(
                    f"image {image} ({workload.what}) is not in the classroom registry the nodes pull from{why}",
                    "Push it: `manage.py seed_registry` (the toolbox once `manage.py build_images toolbox` built it)."))
    return problems, version
