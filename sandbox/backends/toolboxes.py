"""Where a Kubernetes lesson's console runs: the toolbox with ``kubectl``.

Chosen by ``KUBERNETES_TOOLBOX`` (``TUTORIAL_KUBERNETES_TOOLBOX``):

- ``docker`` (the default on a Docker host): a hardened container on the host's Docker engine,
  joined to the Docker network that reaches the API server (:class:`DockerToolboxes`);
- ``pod`` (the site on a cluster, no Docker engine): a pod in the install's tools namespace
  (``KUBERNETES_TOOLS_NAMESPACE``, default ``tutorial-tools``) built like a plain sandbox pod, whose
  NetworkPolicy lets it reach the API server and nothing else (:class:`PodToolboxes`).

Both are the plain backend of their engine with three more verbs, which
:class:`~sandbox.backends.kubernetes.KubernetesBackend` uses besides the contract's console,
resize, run, status and destroy: ``start_toolbox`` (make the console; the learner's kubeconfig is
written in afterwards by exec), ``sandbox_of`` (whose console a reference is, so a token never
goes into another sandbox's console) and ``toolbox_consoles`` (this install's toolboxes).
Neither holds any credential of its own: the pod mounts no service-account token.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import docker.errors
from django.conf import settings

from . import k8s_api
from . import k8s_manifests as km
from .base import LABEL_INSTALL, LABEL_SANDBOX, LABEL_WORKSPACE, BackendError, SandboxSpec
from .docker import DockerBackend
from .pod import PodBackend

log = logging.getLogger(__name__)

WORKSPACE = "kubernetes"
TOOLBOX_KINDS = ("docker", "pod")


def _setting(name: str, default):
    return getattr(settings, name, default)


class DockerToolboxes(DockerBackend):
    """Toolboxes as containers on the host's Docker engine."""

    workspaces = (WORKSPACE,)
    keeps_home_files: ClassVar[bool] = False

    def learner_server(self, server: str) -> str:
        """The API address as a toolbox on the Docker network reaches it."""
        return _setting("KUBERNETES_API_INTERNAL_SERVER", "") or server

    async def start_toolbox(self, spec: SandboxSpec) -> str:
        network = _setting("KUBERNETES_TOOLBOX_NETWORK", "kind")
        config = km.toolbox_container_config(spec, network=network, registry=_setting("KUBERNETES_LESSON_REGISTRY", ""))
        if network not in ("none", "bridge"):
            try:
                await self._call(self.client.networks.get, network)
            except docker.errors.NotFound as exc:
                raise BackendError(
                    f"The Docker network {network!r} that reaches the cluster does not exist. The local cluster "
                    "makes its own (`.venv/bin/python -m cluster up`); kind's appears with `kind create cluster`; "
                    "otherwise set TUTORIAL_K8S_TOOLBOX_NETWORK."
                ) from exc
        try:
            container = await self._call(self.client.containers.create, deadline=self.create_seconds, **config)
            await self._call(container.start, deadline=self.create_seconds)
        except docker.errors.ImageNotFound as exc:
            raise BackendError(
                f"The toolbox image {spec.image} is not built. Run `.venv/bin/python manage.py build_images toolbox` "
                "(it needs a static kubectl on this machine; see docs/kubernetes.md)."
            ) from exc
        except docker.errors.APIError as exc:
            raise BackendError(f"The Docker engine could not start the toolbox: {exc.explanation or exc}") from exc
        return container.id

    async def sandbox_of(self, ref: str) -> str | None:
        """The sandbox whose toolbox ``ref`` is; None when it is gone."""
        container = await self._inspect(ref)
        if container is None:
            return None
        return ((container.get("Config") or {}).get("Labels") or {}).get(LABEL_SANDBOX, "")

    async def toolbox_consoles(self) -> dict[str, str]:
        """This install's toolbox containers: ``{sandbox_id: container id}`` (one without an
        install label predates install labels and counts as this install's)."""
        found = {}
        for container in await self.labelled("containers", [LABEL_SANDBOX, f"{LABEL_WORKSPACE}={WORKSPACE}"]):
            labels = container.get("Labels") or {}
            if labels.get(LABEL_INSTALL, settings.INSTALL_ID) == settings.INSTALL_ID:
                found[labels[LABEL_SANDBOX]] = container["Id"]
        return found


class PodToolboxes(PodBackend):
    """Toolboxes as pods in the install's tools namespace: no Docker engine anywhere."""

    workspaces = (WORKSPACE,)
    keeps_home_files: ClassVar[bool] = False

    def __init__(self, api: k8s_api.ClusterAPI | None = None, namespace: str | None = None):
        super().__init__(api, namespace or _setting("KUBERNETES_TOOLS_NAMESPACE", km.TOOLS_NAMESPACE))

    def learner_server(self, server: str) -> str:
        """The API address as a pod reaches it: ``KUBERNETES_TOOLBOX_API_SERVER``, else the
        server's own (an in-cluster site's is the ``kubernetes`` Service's address)."""
        return _setting("KUBERNETES_TOOLBOX_API_SERVER", "") or server

    async def start_toolbox(self, spec: SandboxSpec) -> str:
        """The toolbox pod, running with its shell's prompt shown (the pod backend's create)."""
        return await self.create(spec)

    def pod_manifest(self, spec: SandboxSpec, image: str) -> dict:
        return km.toolbox_pod_manifest(spec, namespace=self.namespace, image=image,
                                       registry=_setting("KUBERNETES_LESSON_REGISTRY", ""))

    async def namespace_policy(self) -> dict:
        """Egress to the API server only: the address the learner's kubeconfig names, and where the
        ``default/kubernetes`` Service leads (the address a CNI sees after translation)."""
        answer = await self.api.request("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                                        {"labelSelector": "kubernetes.io/service-name=kubernetes"})
        slices = (answer.json() or {}).get("items") or [] if answer.status == 200 else []
        if answer.status != 200:
            log.warning("the API server's EndpointSlices could not be read (%s): the toolboxes' network policy "
                        "allows only the address in their kubeconfig", answer.status)
        endpoints = km.api_server_endpoints(self.learner_server(self.api.config.host), slices)
        try:
            return km.toolbox_pods_policy(self.namespace, install=settings.INSTALL_ID, api_endpoints=endpoints)
        except ValueError as exc:
            raise BackendError(
                f"{exc}: set TUTORIAL_K8S_TOOLBOX_API_SERVER to the API server's address (https://IP:port), or "
                "let the server's account list endpointslices in namespace default.") from exc

    def policy_name(self) -> str:
        return km.install_policy_name("toolboxes", settings.INSTALL_ID)

    async def sandbox_of(self, ref: str) -> str | None:
        pod = await self._read_pod(ref)
        if pod is None:
            return None
        return (pod["metadata"].get("labels") or {}).get(LABEL_SANDBOX, "")

    async def toolbox_consoles(self) -> dict[str, str]:
        return {sandbox_id: console["ref"] for sandbox_id, console in (await self.consoles()).items()}


def make_toolboxes(kind: str, *, docker_host: str | None = None, kubeconfig: str = "", context: str = ""):
    """The toolboxes of ``kind`` (``docker`` or ``pod``); ``BackendError`` for another."""
    if kind == "docker":
        return DockerToolboxes(docker_host)
    if kind == "pod":
        return PodToolboxes(k8s_api.ClusterAPI(lambda: k8s_api.load_config(kubeconfig, context)))
    raise BackendError(f"KUBERNETES_TOOLBOX must be one of {', '.join(TOOLBOX_KINDS)}, not {kind!r}")

