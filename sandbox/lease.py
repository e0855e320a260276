"""One active reaper among several: a ``coordination.k8s.io/v1`` Lease, taken and renewed.

On a cluster the reaper runs as a Deployment of two replicas so that a node going away does not
stop time limits and reconciliation; two reapers acting at once would still be safe (every pass is
idempotent) but would double the engine calls and race each other's stops. So each replica calls
:meth:`LeaseElector.hold` before a pass and reaps only while it holds the Lease.

The rule (:func:`decide`, pure, tested alone), as client-go's leader election keeps it:

- nobody holds the Lease, or the holder has not renewed it for ``leaseDurationSeconds``: take it
  (``leaseTransitions`` + 1);
- we hold it: renew it (``renewTime`` = now);
- someone else holds it and renewed it in time: wait.

Two replicas that both decide to take it write with the ``resourceVersion`` they read: the API
server accepts one and answers 409 to the other, which then waits. A holder that cannot renew
(API server down, a 409) stops reaping at once rather than at expiry: it may have lost the Lease.
A pass longer than the Lease's duration could overlap the next holder's first pass; passes are
bounded by the backends' deadlines well below the default 30 s, and overlap is harmless anyway.

Every call has a deadline (``REQUEST_TIMEOUT``). The cluster is the one the backends use
(``sandbox.backends.k8s_api.load_config``): in-cluster credentials inside a pod.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from pathlib import Path

from django.conf import settings

from .backends import k8s_api
from .backends.base import BackendError

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = (5, 10)  # connect, read (seconds)
DEFAULT_DURATION_SECONDS = 30
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

TAKE = "take"
RENEW = "renew"
WAIT = "wait"


class LeaseError(Exception):
    """The Lease cannot be read or written (no cluster configured, API server down, forbidden)."""


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """What the election reads of a Lease's spec."""

    holder: str = ""
    renewed: dt.datetime | None = None
    duration_seconds: int = DEFAULT_DURATION_SECONDS
    transitions: int = 0


def decide(record: LeaseRecord | None, identity: str, now: dt.datetime) -> str:
    """``TAKE``, ``RENEW`` or ``WAIT`` for ``identity`` at ``now`` (see the module docstring)."""
    if record is None or not record.holder:
        return TAKE
    if record.holder == identity:
        return RENEW
    if record.renewed is None or now - record.renewed >= dt.timedelta(seconds=record.duration_seconds):
        return TAKE
    return WAIT


def next_spec(record: LeaseRecord | None, identity: str, now: dt.datetime, action: str,
              duration_seconds: int) -> dict:
    """The Lease spec to write for ``action`` (``TAKE`` or ``RENEW``)."""
    transitions = record.transitions if record else 0
    acquired = {}
    if action == TAKE:
        transitions = transitions + 1 if record and record.holder else transitions
        acquired = {"acquireTime": now}
    return {"holderIdentity": identity, "leaseDurationSeconds": duration_seconds, "renewTime": now,
            "leaseTransitions": transitions, **acquired}


def default_identity() -> str:
    """The pod's name (a pod's hostname), which is unique among the replicas."""
    return os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or f"pid-{os.getpid()}"


def default_namespace() -> str:
    """The namespace the process runs in: ``POD_NAMESPACE``, else the service account's."""
    namespace = os.environ.get("POD_NAMESPACE", "").strip()
    if namespace:
        return namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    except OSError:
        raise LeaseError("no namespace for the Lease: set POD_NAMESPACE or run in a pod") from None


def api_client():
    """The official client on the site's cluster configuration (``k8s_api.load_config``: in-cluster
    inside a pod without a kubeconfig, else the kubeconfig), so the Lease is on the same cluster."""
    from kubernetes import client as k8s_client

    try:
        config = k8s_api.load_config(settings.KUBERNETES_KUBECONFIG, settings.KUBERNETES_CONTEXT)
    except BackendError as exc:
        raise LeaseError(f"no cluster for the Lease: {exc}") from None
    return k8s_client.ApiClient(config.configuration)


class LeaseElector:
    """Holds the Lease ``name`` in ``namespace`` for ``identity`` (sync: run it off the event loop)."""

    def __init__(self, name: str, namespace: str, identity: str, *, api=None,
                 duration_seconds: int = DEFAULT_DURATION_SECONDS):
        self.name, self.namespace, self.identity = name, namespace, identity
        self.duration_seconds = duration_seconds
        self._api = api
        self.holding = False

    @property
    def api(self):
        if self._api is None:
            from kubernetes import client as k8s_client

            self._api = k8s_client.CoordinationV1Api(api_client())
        return self._api

    def hold(self, now: dt.datetime | None = None) -> bool:
        """True while this identity holds the Lease (taking or renewing it as needed); never raises."""
        from kubernetes.client.exceptions import ApiException

        now = now or dt.datetime.now(dt.timezone.utc)
        was_holding = self.holding
        try:
            self.holding = self._hold(now)
        except ApiException as exc:
            if exc.status != 409:
                log.warning("lease %s/%s: %s %s", self.namespace, self.name, exc.status, exc.reason)
            self.holding = False
        except Exception as exc:  # noqa: BLE001 - an unreachable API server means "not holding"
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            self.holding = False
        if self.holding != was_holding:
            log.info("lease %s/%s: %s %s", self.namespace, self.name, self.identity,
                     "holds it" if self.holding else "does not hold it")
        return self.holding

    def _hold(self, now: dt.datetime) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise
            lease = None
        record = _record(lease) if lease is not None else None
        action = decide(record, self.identity, now)
        if action == WAIT:
            return False
        spec = next_spec(record, self.identity, now, action, self.duration_seconds)
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": self.name},
                    "spec": spec}
            self.api.create_namespaced_lease(self.namespace, body, _request_timeout=REQUEST_TIMEOUT)
        else:
            # The resourceVersion read above makes a concurrent writer's update fail with 409.
            body = {"metadata": {"name": self.name, "resourceVersion": lease.metadata.resource_version},
                    "spec": {**_spec_dict(lease), **spec}}
            self.api.replace_namespaced_lease(self.name, self.namespace, body, _request_timeout=REQUEST_TIMEOUT)
        return True

    def release(self) -> None:
        """Give the Lease up at shutdown so the other replica takes over at once, not at expiry."""
        if not self.holding:
            return
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=REQUEST_TIMEOUT)
            if lease.spec and lease.spec.holder_identity == self.identity:
                body = {"metadata": {"name": self.name, "resourceVersion": lease.metadata.resource_version},
                        "spec": {**_spec_dict(lease), "holderIdentity": None, "renewTime": None}}
                self.api.replace_namespaced_lease(self.name, self.namespace, body, _request_timeout=REQUEST_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - at worst the other replica waits for expiry
            log.warning("lease %s/%s: not released: %s", self.namespace, self.name, exc)
        self.holding = False


def _record(lease) -> LeaseRecord:
    spec = lease.spec
    if spec is None:
        return LeaseRecord()
    return LeaseRecord(holder=spec.holder_identity or "", renewed=spec.renew_time,
                       duration_seconds=spec.lease_duration_seconds or DEFAULT_DURATION_SECONDS,
                       transitions=spec.lease_transitions or 0)


def _spec_dict(lease) -> dict:
    spec = lease.spec
    if spec is None:
        return {}
    return {key: value for key, value in {
        "holderIdentity": spec.holder_identity, "leaseDurationSeconds": spec.lease_duration_seconds,
        "acquireTime": spec.acquire_time, "renewTime": spec.renew_time,
        "leaseTransitions": spec.lease_transitions}.items() if value is not None}
