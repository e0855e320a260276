"""The end of a sandbox removes everything its learner made through the gateway.

Containers, networks and volumes carry the sandbox label (``DockerBackend.destroy`` removes them
too); images the learner built carry it as well; names they made on shared images are in their
tag book; their registry repositories live under their namespace in the classroom registry.
"""

from __future__ import annotations

import json
import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import docker
import docker.errors
from django.conf import settings

from . import policy
from .state import TagBook

log = logging.getLogger(__name__)

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


def destroy_learner_objects(sandbox_id: str, *, data_dir: Path | None = None, docker_host: str | None = None) -> list[str]:
    """Remove every object the learner of this sandbox made; returns what was removed. Idempotent."""
    data_dir = Path(data_dir or settings.DATA_DIR)
    client = docker.DockerClient(base_url=docker_host or settings.DOCKER_HOST, timeout=60)
    removed: list[str] = []
    label = {"label": [f"{policy.LABEL_SANDBOX}={sandbox_id}", f"{policy.LABEL_CREATED}={policy.CREATED_VALUE}"]}
    try:
        for container in client.containers.list(all=True, filters=label):
            _quietly(lambda: container.remove(force=True, v=True))
            removed.append(f"container {container.name}")
        for network in client.networks.list(filters=label):
            _quietly(network.remove)
            removed.append(f"network {network.name}")
        for volume in client.volumes.list(filters=label):
            _quietly(lambda: volume.remove(force=True))
            removed.append(f"volume {volume.name}")
        book = TagBook(data_dir / "gateway-state", sandbox_id)
        state = book.load()
        for tag in state.get("tags", []):
            if _quietly(lambda: client.api.remove_image(tag, noprune=False)):
                removed.append(f"tag {tag}")
        # Built images: children before parents, so repeat while something goes.
        for _ in range(5):
            images = client.images.list(all=True, filters={"label": f"{policy.LABEL_SANDBOX}={sandbox_id}"})
            if not images:
                break
            for image in images:
                if _quietly(lambda: client.images.remove(image.id, force=True)):
                    removed.append(f"image {image.short_id}")
        if state.get("namespace") and not _owner_has_another_docker_sandbox(client, state.get("owner"), sandbox_id):
            # The namespace is the learner's, not this sandbox's: the last of their docker
            # sandboxes to end takes it (a second lesson's pushes survive the first one's end).
            removed += delete_registry_namespace(state["namespace"])
        book.delete()
    finally:
        client.close()
    return removed


def _owner_has_another_docker_sandbox(client: docker.DockerClient, owner: str | None, sandbox_id: str) -> bool:
    if not owner:
        return False
    consoles = client.api.containers(all=True, filters={"label": [
        f"{policy.LABEL_OWNER}={owner}", "tutorial.workspace=docker"]})
    return any((c.get("Labels") or {}).get(policy.LABEL_SANDBOX) != sandbox_id
               and policy.LABEL_CREATED not in (c.get("Labels") or {}) for c in consoles)


def _quietly(call) -> bool:
    try:
        call()
        return True
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        log.info("cleanup: %s", exc)
        return False


def _registry(path: str, method: str = "GET", headers: dict | None = None):
    url = f"http://{settings.GATEWAY_REGISTRY}{path}"
    request = urllib.request.Request(url, method=method, headers=headers or {})
    return urllib.request.urlopen(request, timeout=10)  # noqa: S310 - loopback registry only


CATALOG_PAGE = 1000  # the registry refuses a larger page (400), which once emptied this listing


def registry_repositories(prefix: str = "") -> list[str]:
    """Every repository name starting with ``prefix``, page by page."""
    repos: list[str] = []
    last = ""
    while True:
        query = urlencode({"n": CATALOG_PAGE, **({"last": last} if last else {})})
        try:
            with _registry(f"/v2/_catalog?{query}") as response:
                page = json.load(response).get("repositories") or []
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("cannot list the classroom registry: %s", exc)
            break
        repos += page
        if len(page) < CATALOG_PAGE:
            break
        last = page[-1]
    return [r for r in repos if r.startswith(prefix)]


def delete_registry_namespace(namespace: str) -> list[str]:
    """Delete every manifest under ``namespace/`` through the registry API, then the folders the
    catalog lists (the registry runs with no blob cache, so removing them is safe)."""
    if not namespace or namespace == policy.SHARED_NAMESPACE or "/" in namespace or ".." in namespace:
        return []
    removed = []
    for repo in registry_repositories(f"{namespace}/"):
        try:
            with _registry(f"/v2/{repo}/tags/list") as response:
                tags = json.load(response).get("tags") or []
        except (urllib.error.URLError, OSError, ValueError):
            tags = []
        for tag in tags:
            try:
                with _registry(f"/v2/{repo}/manifests/{tag}", "HEAD", {"Accept": MANIFEST_TYPES}) as response:
                    digest = response.headers.get("Docker-Content-Digest")
                if digest:
                    _registry(f"/v2/{repo}/manifests/{digest}", "DELETE").close()
            except (urllib.error.URLError, OSError):
                pass
        removed.append(f"repository {repo}")
    folder = Path(settings.GATEWAY_REGISTRY_DIR) / "docker" / "registry" / "v2" / "repositories" / namespace
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
    return removed
