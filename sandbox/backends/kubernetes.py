"""The Kubernetes backend for the ``kubernetes`` workspace: a namespace per sandbox.

A sandbox is two things, both labelled ``tutorial.sandbox=<uuid>``:

- a namespace on the configured cluster (kubeconfig setting, default: the current context) holding
  the learner's ServiceAccount, Role, RoleBinding, quota, limits and network policy, all built by
  the pure functions in :mod:`sandbox.backends.k8s_manifests`;
- the console: a hardened toolbox with ``kubectl`` whose kubeconfig holds only that namespace's
  short-lived token (:mod:`sandbox.backends.toolboxes`, ``KUBERNETES_TOOLBOX``): a container on the
  host's Docker engine (its TTY, attach, resize and exec exactly the Docker backend's; on one
  machine with kind it joins kind's Docker network and reaches the API server at its internal
  address, never through 127.0.0.1), or a pod in the install's tools namespace (exactly a plain
  sandbox pod's console), so a site on a cluster needs no Docker engine at all.

The learner's token is short-lived (``KUBERNETES_TOKEN_SECONDS``) and a sandbox may outlive it
(extensions), so the namespace carries when it was issued and when it expires (annotations
``tutorial.token-issued`` and ``tutorial.token-expires``). The reaper asks :meth:`credentials_due`
and calls :meth:`refresh_credentials`, which writes a new kubeconfig over the toolbox's own: kubectl
reads the file on every call, so the learner's open shell carries on with the new token. A token
that expired anyway (the cluster was down for hours) makes kubectl say "Unauthorized"; a check that
fails so says why in words (:data:`CREDENTIALS_EXPIRED`).

The engine reference is the toolbox's (container id or pod name). Blocking client calls run in threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import time
from pathlib import Path

import urllib3.exceptions
from django.conf import settings

from . import k8s_api
from . import k8s_manifests as km
from .base import (
    LABEL_INSTALL,
    LABEL_SANDBOX,
    LABEL_WORKSPACE,
    BackendError,
    ConsoleStream,
    EngineState,
    EngineUnavailable,
    PublishedPort,
    RunResult,
    SandboxBackend,
    SandboxSpec,
)
from .blocking import run_blocking
from .toolboxes import make_toolboxes

log = logging.getLogger(__name__)

WORKSPACE = "kubernetes"
REQUEST_TIMEOUT = (5, 30)  # (connect, read) seconds for every management call
KUBECONFIG_WRITE_SECONDS = 15  # writing the kubeconfig into the toolbox
REFRESH_SECONDS = 60  # a whole credentials refresh: token, kubeconfig, annotations

# On the sandbox's namespace: when the learner's current token was issued and when it expires
# (ISO 8601, UTC). The cluster does not say it afterwards: a TokenRequest token is not stored.
ANNOTATION_TOKEN_ISSUED = "tutorial.token-issued"
ANNOTATION_TOKEN_EXPIRES = "tutorial.token-expires"

# What kubectl prints when the API server refuses the token (expired, or its account gone).
UNAUTHORIZED_MARK = "(Unauthorized)"
CREDENTIALS_EXPIRED = ("Your console's Kubernetes credentials expired; they are renewed within a minute "
                       "— or press Reset.")


def _setting(name: str, default):
    return getattr(settings, name, default)


class KubernetesPermissionError(BackendError):
    """The server's own Kubernetes account lacks a permission (the message names verb and resource)."""


class KubernetesBackend(SandboxBackend):
    workspaces = (WORKSPACE,)

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, docker_host: str | None = None,
                 toolbox: str | None = None):
        self.kubeconfig = kubeconfig if kubeconfig is not None else _setting("KUBERNETES_KUBECONFIG", "")
        self.context = context if context is not None else _setting("KUBERNETES_CONTEXT", "")
        self.toolbox_kind = toolbox or _setting("KUBERNETES_TOOLBOX", "docker")
        self.toolbox = make_toolboxes(self.toolbox_kind, docker_host=docker_host, kubeconfig=self.kubeconfig,
                                      context=self.context)
        self._api_client = None
        self._server = ""

    # -- cluster access ---------------------------------------------------------------------------
    def kubeconfig_path(self) -> Path:
        """The kubeconfig the server uses: the setting, else $KUBECONFIG's first file, else ~/.kube/config."""
        if self.kubeconfig:
            return Path(self.kubeconfig).expanduser()
        env = os.environ.get("KUBECONFIG", "")
        first = next((p for p in env.split(os.pathsep) if p), "")
        return Path(first or "~/.kube/config").expanduser()

    def api_client(self):
        """The official client for the configured cluster, made once; ``BackendError`` without a kubeconfig."""
        if self._api_client is None:
            from kubernetes import client as k8s_client
            from kubernetes import config as k8s_config

            if k8s_api.in_cluster(self.kubeconfig):
                # The site runs as a pod: its own service account (what the pod backend uses too).
                client = k8s_client.ApiClient(k8s_api.load_config(self.kubeconfig, self.context).configuration)
                client.configuration.retries = 1
                self._server = client.configuration.host
                self._api_client = client
                return client
            path = self.kubeconfig_path()
            if not path.is_file():
                raise BackendError(
                    f"No kubeconfig at {path}: the kubernetes workspace needs a cluster. This machine's own "
                    "writes one there (`.venv/bin/python -m cluster up`, which `make run` starts); or set "
                    "TUTORIAL_KUBECONFIG to a kubeconfig file (kind, k3s, a managed cluster: see docs/kubernetes.md)."
                )
            try:
                client = k8s_config.new_client_from_config(config_file=str(path), context=self.context or None, persist_config=False)
            except k8s_config.ConfigException as exc:
                where = f"context {self.context!r} of " if self.context else ""
                raise BackendError(f"Cannot use {where}kubeconfig {path}: {exc}") from exc
            client.configuration.retries = 1
            self._server = client.configuration.host
            self._api_client = client
        return self._api_client

    def _apis(self):
        from kubernetes import client

        api = self.api_client()
        return client.CoreV1Api(api), client.RbacAuthorizationV1Api(api), client.NetworkingV1Api(api)

    async def _k8s(self, verb: str, resource: str, namespace: str | None, func, *args, **kwargs):
        """Run one blocking API call in a thread; turn 'unreachable' and 403 into clear errors.

        Other API errors (404, 409, ...) are raised as ``ApiException`` for the caller to decide."""
        from kubernetes.client.exceptions import ApiException

        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return await run_blocking(func, *args, **kwargs)
        except ApiException as exc:
            if exc.status == 403:
                where = f" in namespace {namespace}" if namespace else " (cluster-wide)"
                raise KubernetesPermissionError(
                    f"The server's Kubernetes account may not {verb} {resource}{where} on {self._server}: "
                    f"grant it that permission (docs/kubernetes.md lists what it needs). "
                    f"The API said: {_api_message(exc)}"
                ) from exc
            if exc.status in (0, None, 502, 503, 504):
                raise EngineUnavailable(self._unreachable(exc)) from exc
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise EngineUnavailable(self._unreachable(exc)) from exc

    def _unreachable(self, exc: Exception) -> str:
        return (
            f"The Kubernetes cluster does not answer at {self._server or 'its API address'} ({type(exc).__name__}). "
            f"Is it running? The local cluster: `.venv/bin/python -m cluster status` (and `up`); kind: "
            f"`kind get clusters` (kubeconfig: {self.kubeconfig_path()})."
        )

    def _cluster_ca(self) -> tuple[bytes | None, bool]:
        """The CA the server trusts for the cluster (PEM), and whether TLS verification is off."""
        configuration = self.api_client().configuration
        ca = None
        if configuration.ssl_ca_cert and Path(configuration.ssl_ca_cert).is_file():
            ca = Path(configuration.ssl_ca_cert).read_bytes()
        return ca, not configuration.verify_ssl

    def learner_server(self) -> str:
        """The API address as the toolbox reaches it (the toolboxes' setting, else the server's)."""
        self.api_client()
        return self.toolbox.learner_server(self._server)

    # -- namespace provisioning -------------------------------------------------------------------
    def namespace_for(self, sandbox_id: str) -> str:
        try:
            return km.namespace_name(sandbox_id, _setting("KUBERNETES_NAMESPACE_PREFIX", km.NAMESPACE_PREFIX))
        except ValueError as exc:
            raise BackendError(str(exc)) from exc

    async def _read_namespace(self, name: str):
        from kubernetes.client.exceptions import ApiException

        core, _, _ = self._apis()
        try:
            return await self._k8s("get", "namespaces", None, core.read_namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise BackendError(f"Could not read namespace {name}: {_api_message(exc)}") from exc

    async def _claim_namespace(self, spec: SandboxSpec, name: str) -> None:
        """Make the sandbox's namespace, or reuse it when it is already this sandbox's.

        A namespace of that name that belongs to anything else is never touched. One that is still
        terminating (a reset right after a destroy) is waited for, then made anew."""
        from kubernetes.client.exceptions import ApiException

        core, _, _ = self._apis()
        manifest = km.namespace_manifest(
            spec, pod_security_version=_setting("KUBERNETES_POD_SECURITY_VERSION", "v1.31"),
            prefix=_setting("KUBERNETES_NAMESPACE_PREFIX", km.NAMESPACE_PREFIX),
        )
        deadline = time.monotonic() + _setting("KUBERNETES_NAMESPACE_WAIT_SECONDS", 90)
        while True:
            existing = await self._read_namespace(name)
            if existing is not None and not km.owns(existing.metadata.labels, spec.sandbox_id):
                raise BackendError(
                    f"Namespace {name} already exists on the cluster and does not belong to sandbox "
                    f"{spec.sandbox_id}; it was left untouched. Remove or rename it, or set "
                    "TUTORIAL_K8S_NAMESPACE_PREFIX to another prefix."
                )
            if existing is None:
                try:
                    await self._k8s("create", "namespaces", None, core.create_namespace, manifest)
                    return
                except ApiException as exc:
                    if exc.status != 409:
                        raise BackendError(f"Could not create namespace {name}: {_api_message(exc)}") from exc
            elif (existing.status and existing.status.phase) != "Terminating":
                # Ours and active: bring its labels (Pod Security included) back to what they must be.
                await self._k8s("patch", "namespaces", None, core.patch_namespace, name, {"metadata": {"labels": manifest["metadata"]["labels"]}})
                return
            if time.monotonic() > deadline:
                raise BackendError(f"Namespace {name} is still being deleted; try again in a minute.")
            await asyncio.sleep(1)

    async def _apply(self, obj: dict) -> None:
        """Create one namespaced object, or patch it back to exactly this content if it exists."""
        from kubernetes.client.exceptions import ApiException

        core, rbac, net = self._apis()
        kind, name, namespace = obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"]
        create, patch, resource = {
            "ServiceAccount": (core.create_namespaced_service_account, core.patch_namespaced_service_account, "serviceaccounts"),
            "Role": (rbac.create_namespaced_role, rbac.patch_namespaced_role, "roles.rbac.authorization.k8s.io"),
            "RoleBinding": (rbac.create_namespaced_role_binding, rbac.patch_namespaced_role_binding, "rolebindings.rbac.authorization.k8s.io"),
            "ResourceQuota": (core.create_namespaced_resource_quota, core.patch_namespaced_resource_quota, "resourcequotas"),
            "LimitRange": (core.create_namespaced_limit_range, core.patch_namespaced_limit_range, "limitranges"),
            "NetworkPolicy": (net.create_namespaced_network_policy, net.patch_namespaced_network_policy, "networkpolicies.networking.k8s.io"),
        }[kind]
        try:
            await self._k8s("create", resource, namespace, create, namespace, obj)
        except ApiException as exc:
            if exc.status != 409:
                raise BackendError(f"Could not create {kind} {name} in {namespace}: {_api_message(exc)}") from exc
            await self._k8s("patch", resource, namespace, patch, name, namespace, obj)

    async def _learner_token(self, namespace: str) -> tuple[str, dt.datetime, dt.datetime]:
        """A new token for the learner's account: ``(token, issued, expires)``. The expiry is the
        one the API server granted (it may cap the request), else the one asked for."""
        from kubernetes.client.exceptions import ApiException

        core, _, _ = self._apis()
        seconds = _setting("KUBERNETES_TOKEN_SECONDS", 4 * 3600)
        try:
            request = km.token_request(seconds)
        except ValueError as exc:
            raise BackendError(f"KUBERNETES_TOKEN_SECONDS: {exc}") from exc
        issued = dt.datetime.now(dt.timezone.utc)
        try:
            answer = await self._k8s("create", "serviceaccounts/token", namespace,
                                     core.create_namespaced_service_account_token, km.LEARNER_ACCOUNT, namespace, request)
        except ApiException as exc:
            raise BackendError(f"Could not get a token for the learner in {namespace}: {_api_message(exc)}") from exc
        token = answer.status.token if answer.status else None
        if not token:
            raise BackendError(f"The cluster returned no token for the learner in {namespace}.")
        expires = answer.status.expiration_timestamp
        if not isinstance(expires, dt.datetime):
            expires = issued + dt.timedelta(seconds=seconds)
        elif expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.timezone.utc)
        return token, issued, expires

    async def _record_token(self, namespace: str, issued: dt.datetime, expires: dt.datetime) -> None:
        """Write the token's issue and expiry times on the namespace (see :meth:`credentials_due`)."""
        from kubernetes.client.exceptions import ApiException

        core, _, _ = self._apis()
        annotations = {ANNOTATION_TOKEN_ISSUED: _iso(issued), ANNOTATION_TOKEN_EXPIRES: _iso(expires)}
        try:
            await self._k8s("patch", "namespaces", None, core.patch_namespace, namespace, {"metadata": {"annotations": annotations}})
        except ApiException as exc:
            raise BackendError(f"Could not record the learner's token expiry on namespace {namespace}: {_api_message(exc)}") from exc

    async def _learner_kubeconfig(self, namespace: str) -> tuple[dict, dt.datetime, dt.datetime]:
        """A new token, recorded on the namespace, in the learner's kubeconfig."""
        token, issued, expires = await self._learner_token(namespace)
        ca, insecure = self._cluster_ca()
        kubeconfig = km.learner_kubeconfig(server=self.learner_server(), namespace=namespace, token=token, ca_data=ca, insecure=insecure)
        return kubeconfig, issued, expires

    async def provision_namespace(self, spec: SandboxSpec) -> dict:
        """Make (or repair) the sandbox's namespace and return the learner's kubeconfig."""
        namespace = self.namespace_for(spec.sandbox_id)
        await self._claim_namespace(spec, namespace)
        for obj in km.namespace_objects(spec, namespace, quota=_setting("KUBERNETES_QUOTA", None),
                                        limits=_setting("KUBERNETES_LIMIT_RANGE", None)):
            await self._apply(obj)
        kubeconfig, issued, expires = await self._learner_kubeconfig(namespace)
        await self._record_token(namespace, issued, expires)
        return kubeconfig

    async def delete_namespace(self, sandbox_id: str) -> bool:
        """Start deleting the sandbox's namespace and return at once: the cluster removes what is
        inside in the background. Only a namespace labelled for this sandbox is deleted."""
        from kubernetes.client.exceptions import ApiException

        name = self.namespace_for(sandbox_id)
        existing = await self._read_namespace(name)
        if existing is None or not km.owns(existing.metadata.labels, sandbox_id):
            return False
        core, _, _ = self._apis()
        try:
            await self._k8s("delete", "namespaces", None, core.delete_namespace, name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise BackendError(f"Could not delete namespace {name}: {_api_message(exc)}") from exc
        return True

    # -- the toolbox console ----------------------------------------------------------------------
    async def _install_kubeconfig(self, ref: str, kubeconfig: dict) -> None:
        """Write the kubeconfig into the toolbox: a new file moved over the old one, so a kubectl
        running meanwhile reads either the old or the new file, never half of one."""
        result = await self.toolbox.run(ref, km.kubeconfig_install_script(kubeconfig), timeout=KUBECONFIG_WRITE_SECONDS)
        if result.exit_code != 0:
            reason = "it did not finish in time" if result.timed_out else (result.output.strip() or result.exit_code)
            raise BackendError(f"Could not give the toolbox its kubeconfig: {reason}")

    # -- the learner's credentials ----------------------------------------------------------------
    async def credentials_due(self, sandbox_id: str, now: dt.datetime | None = None) -> bool:
        """Whether the learner's token should be renewed now: less than a third of its lifetime is
        left, or the namespace does not say (annotations missing or unreadable). ``False`` when the
        sandbox has no namespace of its own: there is nothing to renew (the reaper's reconcile
        deals with that sandbox). Raises ``BackendError`` when the cluster cannot be asked."""
        namespace = await self._read_namespace(self.namespace_for(sandbox_id))
        if namespace is None or not km.owns(namespace.metadata.labels, sandbox_id):
            return False
        annotations = namespace.metadata.annotations or {}
        issued = _parse_time(annotations.get(ANNOTATION_TOKEN_ISSUED))
        expires = _parse_time(annotations.get(ANNOTATION_TOKEN_EXPIRES))
        if issued is None or expires is None or expires <= issued:
            return True
        now = now or dt.datetime.now(dt.timezone.utc)
        return (expires - now) < (expires - issued) / 3

    async def refresh_credentials(self, sandbox_id: str, ref: str) -> None:
        """Give the learner a new token: written over the toolbox's kubeconfig, then recorded on
        the namespace. The old token stays valid until it expires, so nothing the learner runs
        meanwhile fails. Within ``REFRESH_SECONDS``; every failure is a ``BackendError``."""
        try:
            async with asyncio.timeout(REFRESH_SECONDS):
                await self._refresh_credentials(sandbox_id, ref)
        except TimeoutError as exc:
            raise BackendError(
                f"Renewing the Kubernetes credentials of sandbox {sandbox_id} took longer than {REFRESH_SECONDS} s; "
                "it is tried again on the next pass.") from exc

    async def _refresh_credentials(self, sandbox_id: str, ref: str) -> None:
        name = self.namespace_for(sandbox_id)
        namespace = await self._read_namespace(name)
        if namespace is None or not km.owns(namespace.metadata.labels, sandbox_id):
            raise BackendError(f"Sandbox {sandbox_id} has no namespace {name} on the cluster: no credentials to renew.")
        # The token goes only into this sandbox's own console, never into another's by a stale ref.
        owner = await self.toolbox.sandbox_of(ref)
        if owner is None:
            raise BackendError(f"The console of sandbox {sandbox_id} is gone: no credentials to renew.")
        if owner != sandbox_id:
            raise BackendError(f"Toolbox {ref[:12]} is not the console of sandbox {sandbox_id}; its kubeconfig was left alone.")
        kubeconfig, issued, expires = await self._learner_kubeconfig(name)
        await self._install_kubeconfig(ref, kubeconfig)
        await self._record_token(name, issued, expires)

    # -- the contract -----------------------------------------------------------------------------
    async def create(self, spec: SandboxSpec) -> str:
        if spec.workspace != WORKSPACE:
            raise BackendError(f"the Kubernetes backend serves the {WORKSPACE!r} workspace, not {spec.workspace!r}")
        self.namespace_for(spec.sandbox_id)  # a bad id fails before anything is made
        await self.toolbox.destroy(spec.sandbox_id)  # never two consoles
        try:
            kubeconfig = await self.provision_namespace(spec)
            ref = await self.toolbox.start_toolbox(spec)
            await self._install_kubeconfig(ref, kubeconfig)
            return ref
        except Exception:
            # Remove whatever was made. delete_namespace touches only a namespace labelled for
            # this sandbox, so a colliding namespace that is someone else's survives this.
            await self.toolbox.destroy(spec.sandbox_id)
            try:
                await self.delete_namespace(spec.sandbox_id)
            except BackendError as cleanup:
                log.warning("could not remove the namespace of failed sandbox %s: %s", spec.sandbox_id, cleanup)
            raise

    async def destroy(self, sandbox_id: str) -> None:
        """Remove the toolbox now and start deleting the namespace (finished by the cluster in the
        background). Raises ``BackendError`` when the cluster cannot be told, so the reaper retries."""
        await self.toolbox.destroy(sandbox_id)
        await self.delete_namespace(sandbox_id)

    async def status(self, ref: str) -> EngineState:
        state = await self.toolbox.status(ref)
        if state != EngineState.RUNNING:
            return state
        # A console without its namespace is no sandbox: report it missing so it is cleaned up.
        sandbox_id = await self.toolbox.sandbox_of(ref)
        if not sandbox_id:
            return EngineState.MISSING
        namespace = await self._read_namespace(self.namespace_for(sandbox_id))
        if namespace is None or not km.owns(namespace.metadata.labels, sandbox_id) or (namespace.status and namespace.status.phase) == "Terminating":
            return EngineState.MISSING
        return EngineState.RUNNING

    async def open_console(self, ref: str, *, stdin: bool = True, replay: bool = True) -> ConsoleStream:
        return await self.toolbox.open_console(ref, stdin=stdin, replay=replay)

    async def resize(self, ref: str, cols: int, rows: int) -> None:
        await self.toolbox.resize(ref, cols, rows)

    async def run(self, ref: str, script: str, *, timeout: float, max_output: int = 64 * 1024) -> RunResult:
        """Checks run in the toolbox with the learner's own kubeconfig (their permissions, no more).
        A script that failed because the API server refused that token says so in words."""
        result = await self.toolbox.run(ref, script, timeout=timeout, max_output=max_output)
        return explain_unauthorized(result)

    async def list_owned(self) -> dict[str, str]:
        """Sandboxes with a labelled namespace or toolbox: ``{sandbox_id: toolbox ref or namespace}``."""
        owned, _ = await self._owned()
        return owned

    async def _owned(self) -> tuple[dict[str, str], set[str]]:
        """``list_owned``, and the ids whose only object is a namespace the cluster is already deleting."""
        core, _, _ = self._apis()
        answer = await self._k8s("list", "namespaces", None, core.list_namespace, label_selector=f"{LABEL_SANDBOX},{LABEL_WORKSPACE}={WORKSPACE}")
        owned: dict[str, str] = {}
        deleting: set[str] = set()
        for namespace in answer.items:
            labels = namespace.metadata.labels or {}
            sandbox_id = labels.get(LABEL_SANDBOX)
            # Filter here too: a namespace is deleted on the strength of these labels (never another
            # install's; an unlabelled one predates install labels).
            if sandbox_id and labels.get(LABEL_WORKSPACE) == WORKSPACE and namespace.metadata.name == self._safe_name(sandbox_id) \
                    and labels.get(LABEL_INSTALL, settings.INSTALL_ID) == settings.INSTALL_ID:
                owned[sandbox_id] = namespace.metadata.name
                if (namespace.status and namespace.status.phase) == "Terminating":
                    deleting.add(sandbox_id)
        for sandbox_id, ref in (await self.toolbox.toolbox_consoles()).items():
            owned[sandbox_id] = ref
            deleting.discard(sandbox_id)
        return owned, deleting

    def _safe_name(self, sandbox_id: str) -> str | None:
        try:
            return self.namespace_for(sandbox_id)
        except BackendError:
            return None

    async def reconcile(self, live_sandbox_ids, in_scope=None) -> list[str]:
        """Remove every sandbox this backend holds whose id is not in ``live_sandbox_ids`` (and is
        ``in_scope``, when given); return the ids removed. A namespace the cluster is already
        deleting is left to it (a finalizer may hold it; asking again changes nothing). A failure
        on one sandbox is logged and does not stop the others."""
        live = {str(sandbox_id) for sandbox_id in live_sandbox_ids}
        owned, deleting = await self._owned()
        return await self.destroy_orphans(set(owned) - live - deleting, in_scope)

    async def pod_problems(self, sandbox_id: str) -> list[str]:
        """Why the learner's pods are stuck, in words: an image that cannot be pulled, a container
        that keeps crashing, a config it cannot start with. Empty when nothing is stuck."""
        from kubernetes.client.exceptions import ApiException

        core, _, _ = self._apis()
        namespace = self.namespace_for(sandbox_id)
        try:
            pods = await self._k8s("list", "pods", namespace, core.list_namespaced_pod, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise BackendError(f"Could not list the pods in {namespace}: {_api_message(exc)}") from exc
        return [problem for pod in pods.items for problem in km.explain_pod(pod.to_dict())]

    async def published_ports(self, sandbox_id: str) -> list[PublishedPort]:
        """The learner's Services that select ready pods, each reached at one ready pod's own address
        and target port. Only where the site runs on the cluster's node (the local cluster): pod
        addresses are reachable from nowhere else. Never the Service's virtual IP: a learner may
        edit Endpoints, and a selector-less Service could lead anywhere; here every address used
        is checked to be a running pod of the learner's own namespace."""
        if not _setting("KUBERNETES_LOCAL_CLUSTER", False):
            return []
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core, _, _ = self._apis()
        discovery = client.DiscoveryV1Api(self.api_client())
        namespace = self.namespace_for(sandbox_id)
        try:
            services = await self._k8s("list", "services", namespace, core.list_namespaced_service, namespace)
            pods = await self._k8s("list", "pods", namespace, core.list_namespaced_pod, namespace)
            slices = await self._k8s("list", "endpointslices", namespace, discovery.list_namespaced_endpoint_slice, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise BackendError(f"Could not list the Services in {namespace}: {_api_message(exc)}") from exc
        running = {pod.metadata.name: pod.status.pod_ip for pod in pods.items
                   if pod.status and pod.status.phase == "Running" and pod.status.pod_ip}
        found = []
        for service in services.items:
            spec = service.spec
            if not spec or not spec.selector or spec.type not in ("ClusterIP", "NodePort", None):
                continue
            name = service.metadata.name
            for service_port in spec.ports or []:
                if (service_port.protocol or "TCP") != "TCP":
                    continue
                target = _ready_pod_address(slices.items, name, service_port.name, running, namespace)
                if target is not None:
                    found.append(PublishedPort(f"{name}:{service_port.port}", name, service_port.port, *target))
        return found

    async def ping(self) -> str:
        """The cluster's version, or a clear error."""
        from kubernetes import client

        info = await self._k8s("get", "version", None, client.VersionApi(self.api_client()).get_code)
        return info.git_version


def _ready_pod_address(slices, service: str, port_name: str | None, running: dict[str, str],
                       namespace: str) -> tuple[str, int] | None:
    """A ready endpoint of ``service`` that is a running pod of ``namespace`` at that pod's own
    address: ``(pod IP, target port)``, or None."""
    for endpoint_slice in slices:
        labels = (endpoint_slice.metadata.labels or {}) if endpoint_slice.metadata else {}
        if labels.get("kubernetes.io/service-name") != service:
            continue
        port = next((p.port for p in endpoint_slice.ports or [] if (p.name or None) == (port_name or None) and p.port), None)
        if port is None:
            continue
        for endpoint in endpoint_slice.endpoints or []:
            ref = endpoint.target_ref
            ready = endpoint.conditions is None or endpoint.conditions.ready is not False
            if not ready or ref is None or ref.kind != "Pod" or (ref.namespace or namespace) != namespace:
                continue
            pod_ip = running.get(ref.name)
            if pod_ip and pod_ip in (endpoint.addresses or []):
                return pod_ip, int(port)
    return None


def explain_unauthorized(result: RunResult) -> RunResult:
    """``result`` with :data:`CREDENTIALS_EXPIRED` added when it failed on an unaccepted token."""
    if result.exit_code == 0 or UNAUTHORIZED_MARK not in result.output:
        return result
    return dataclasses.replace(result, output=f"{result.output.rstrip()}\n{CREDENTIALS_EXPIRED}")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_time(text: str | None) -> dt.datetime | None:
    """An annotation's time (ISO 8601), or ``None`` when it is missing or unreadable."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _api_message(exc) -> str:
    """The human part of a Kubernetes API error (its Status message), else the HTTP reason."""
    import json

    try:
        body = json.loads(exc.body or "{}")
        return body.get("message") or exc.reason or str(exc.status)
    except (ValueError, TypeError, AttributeError):
        return str(exc.reason or exc.status)
