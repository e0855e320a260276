"""Fixtures of the unit tests."""

from __future__ import annotations

import pytest

from sandbox import services


@pytest.fixture
def kubernetes_site(settings, monkeypatch):
    """A site configured for a Kubernetes cluster (not the local one) whose every workspace is
    served by the backend the test passes: ``kubernetes_site(backend)`` returns it."""
    settings.SANDBOX_BACKENDS = dict(settings.SANDBOX_BACKENDS, kubernetes="sandbox.backends.kubernetes.KubernetesBackend")
    settings.KUBERNETES_KUBECONFIG = "/nonexistent/kubeconfig"
    settings.KUBERNETES_LOCAL_CLUSTER = False

    def use(backend):
        monkeypatch.setattr(services, "get_backend", lambda workspace: backend)
        return backend

    return use
