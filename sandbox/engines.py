"""Which backend serves a workspace, and the spec it is given for a sandbox row.

Below the services and the warm pool, which both create sandboxes on the engine.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .backends.base import BackendError, Limits, SandboxBackend, SandboxSpec
from .models import Sandbox

# A pooled container is made for nobody: its owner label and name until a learner claims its row.
POOL_OWNER_ID = 0
POOL_OWNER_NAME = "warm-pool"


@cache
def get_backend(workspace: str) -> SandboxBackend:
    try:
        path = settings.SANDBOX_BACKENDS[workspace]
    except KeyError:
        raise BackendError(f"no backend is configured for the {workspace!r} workspace") from None
    return import_string(path)()


# Workspaces that need a Docker engine whichever backend runs plain sandboxes: a Docker lesson's
# learner `docker` is the gateway in front of an engine (a cluster gives none without privileged
# pods, docs/scaling.md), and a Kubernetes lesson's toolbox when it is a container on the engine
# (KUBERNETES_TOOLBOX=docker; as a pod it needs none).
def needs_docker_engine(workspace: str) -> bool:
    return workspace == "docker" or (workspace == "kubernetes" and settings.KUBERNETES_TOOLBOX == "docker")


def workspace_offered(workspace: str) -> bool:
    """False for a workspace that needs a Docker engine on a site without one (``DOCKER_ENGINE``
    off, the site on a cluster): the catalogue says so and Start refuses."""
    return not needs_docker_engine(workspace) or settings.DOCKER_ENGINE


def spec_for(sandbox: Sandbox) -> SandboxSpec:
    return SandboxSpec(
        sandbox_id=str(sandbox.id),
        owner_id=sandbox.owner_id if sandbox.owner_id is not None else POOL_OWNER_ID,
        owner_name=sandbox.owner.get_username() if sandbox.owner_id is not None else POOL_OWNER_NAME,
        lesson=sandbox.lesson,
        workspace=sandbox.workspace,
        image=sandbox.image,
        limits=Limits(**settings.SANDBOX_LIMITS),
    )
