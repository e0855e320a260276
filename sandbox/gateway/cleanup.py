"""The end of a sandbox removes everything its learner made through the gateway.

Containers, networks and volumes carry the sandbox label (``DockerBackend.destroy`` removes them
too); images the learner built carry it as well; names they made on shared images are in their
tag book; their registry repositories live under their namespace in the classroom registry; the
socket folder ``DATA_DIR/gateway/<uuid>/`` and the record ``gateway-state/<uuid>.json`` are the
gateway's own.

One learner's cleanup never waits on the engine for ever, and never holds up another's: every
engine call has a deadline (``CALL_DEADLINE``) and the whole cleanup a budget (``BUDGET``); it
removes objects one by one, by id, with force, and never uses the engine-wide operations that
take a lock over every container (``prune``) or the image deletes' parent pruning (a container
whose shim died once made those hang for every learner). What fails is logged and left in the
record with ``ended`` set; ``sweep`` retries it later in a background thread, and drops tag
records whose image went elsewhere. A sweep is started (at most one a minute per DATA_DIR) by
every ``destroy_learner_objects``, which runs at each sandbox's start and end and for every
orphan the reaper or the gateway process finds, and by the gateway process's watcher every few
minutes (``server.SWEEP_INTERVAL``), so a quiet class's failures are retried too.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import docker
import docker.errors
import requests.exceptions
from django.conf import settings

from ..engine.api import SDK_API_VERSION
from ..engine.labels import LABEL_ROLE, LABEL_WORKSPACE, ROLE_CONSOLE
from . import policy
from .state import TagBook

log = logging.getLogger(__name__)

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
CALL_DEADLINE = 15.0  # seconds for one engine call
BUDGET = 60.0  # seconds for one sandbox's cleanup; what is left is retried later
RETRY_AFTER = 60.0  # seconds between attempts at one ended sandbox
FOLDER_GRACE = 600.0  # a socket folder with no sandbox container this old is an orphan
# The engine answered with an error or not at all: both are "try again later".
ENGINE_FAILURES = (docker.errors.APIError, requests.exceptions.RequestException, OSError)


class _Run:
    """One cleanup's engine calls: each with the client's deadline, all within a budget."""

    def __init__(self, client: docker.DockerClient, budget: float, clock: Callable[[], float]):
        self.api = client.api
        self.clock = clock
        self.until = clock() + budget
        self.removed: list[str] = []
        self.failed: list[str] = []

    def call(self, what: str, func, *args, **kwargs):
        """``func``'s answer; None when the object is already gone or the call failed (recorded)."""
        if self.clock() >= self.until:
            self.failed.append(f"{what} (out of time)")
            return None
        try:
            return func(*args, **kwargs)
        except docker.errors.NotFound:
            return None
        except ENGINE_FAILURES as exc:
            log.warning("cleanup: %s failed, will retry: %s", what, exc)
            self.failed.append(what)
            return None

    def remove(self, what: str, func, *args, **kwargs) -> bool:
        failures = len(self.failed)
        self.call(what, func, *args, **kwargs)
        if len(self.failed) == failures:
            self.removed.append(what)
            return True
        return False


def _client(docker_host: str | None, deadline: float) -> docker.DockerClient:
    # A fixed API version: no version probe, which would itself be a call without our deadline.
    return docker.DockerClient(base_url=docker_host or settings.DOCKER_HOST, version=SDK_API_VERSION, timeout=deadline)


def destroy_learner_objects(sandbox_id: str, *, data_dir: Path | None = None, docker_host: str | None = None,
                            deadline: float = CALL_DEADLINE, budget: float = BUDGET,
                            clock: Callable[[], float] = time.monotonic, retry: bool = True) -> list[str]:
    """Remove every object the learner of this sandbox made; returns what was removed. Idempotent.
    Returns within about ``budget`` + ``deadline`` seconds whatever the engine does; what is left
    is retried by ``sweep`` (started in the background here unless ``retry`` is False)."""
    data_dir = Path(data_dir or settings.DATA_DIR)
    docker_host = docker_host or settings.DOCKER_HOST
    removed = _destroy(sandbox_id, data_dir, docker_host, deadline, budget, clock)
    if retry:
        sweep_soon(data_dir, docker_host)
    return removed


def _destroy(sandbox_id: str, data_dir: Path, docker_host: str, deadline: float, budget: float,
             clock: Callable[[], float]) -> list[str]:
    client = _client(docker_host, deadline)
    run = _Run(client, budget, clock)
    book = TagBook(data_dir / "gateway-state", sandbox_id)
    learner_label = {"label": [f"{policy.LABEL_SANDBOX}={sandbox_id}", f"{policy.LABEL_CREATED}={policy.CREATED_VALUE}"]}
    sandbox_label = {"label": [f"{policy.LABEL_SANDBOX}={sandbox_id}"]}
    try:
        for container in run.call("list containers", run.api.containers, all=True, filters=learner_label) or []:
            name = (container.get("Names") or ["/" + container["Id"][:12]])[0].lstrip("/")
            run.remove(f"container {name}", _remove_container, run.api, container["Id"])
        for network in run.call("list networks", run.api.networks, filters=learner_label) or []:
            run.remove(f"network {network['Name']}", run.api.remove_network, network["Id"])
        volumes = (run.call("list volumes", run.api.volumes, filters=learner_label) or {}).get("Volumes") or []
        for volume in volumes:
            run.remove(f"volume {volume['Name']}", run.api.remove_volume, volume["Name"], force=True)
        # Listed before the tags go: removing a built image's last tag deletes it, and its
        # parents would be forgotten.
        built = run.call("list images", run.api.images, all=True,
                         filters={"label": f"{policy.LABEL_SANDBOX}={sandbox_id}"}) or []
        state = book.load()
        for tag in state.get("tags", []):
            # noprune: no parent pruning inside the engine; a tag on a pulled image has no parents.
            run.remove(f"tag {tag}", run.api.remove_image, tag, noprune=True)
        _remove_built_images(run, sandbox_id, built)
        if state.get("namespace"):
            others = _owner_has_another_docker_sandbox(run, state.get("owner"), sandbox_id)
            if others is False:
                # The namespace is the learner's, not this sandbox's: the last of their docker
                # sandboxes to end takes it (a second lesson's pushes survive the first one's end).
                run.removed.extend(delete_registry_namespace(state["namespace"]))
        # The socket folder and the record go only once no container of this sandbox is left: a
        # restart of the same sandbox makes its folder again before its container.
        left = run.call("list sandbox containers", run.api.containers, all=True, filters=sandbox_label)
        if run.failed:
            book.mark_ended(run.failed, time.time())
        elif left == []:
            remove_gateway_folder(data_dir, sandbox_id)
            book.delete()
    finally:
        client.close()
    return run.removed


def _remove_container(api, container_id: str) -> None:
    try:
        api.remove_container(container_id, force=True, v=True)
    except docker.errors.APIError as exc:
        if exc.status_code != 409 or "already in progress" not in str(exc):
            raise
        # An earlier attempt (ours, timed out, or the backend's) is still at it: wait for it,
        # within the client's deadline like any other call.
        api.wait(container_id, timeout=api.timeout, condition="removed")  # the SDK sends no deadline by default


def _remove_built_images(run: _Run, sandbox_id: str, images: list[dict]) -> None:
    """The learner's built images by id, children first, then their untagged parents one by one
    (what the engine's parent pruning would do, each step with a deadline)."""
    ids = {image["Id"] for image in images}
    parents = {image.get("ParentId") for image in images} - ids - {"", None}
    pending = list(images)
    for _ in range(len(pending) + 1):
        if not pending:
            break
        has_child = {image.get("ParentId") for image in pending}
        leaves = [image for image in pending if image["Id"] not in has_child] or pending
        for image in leaves:
            run.remove(f"image {image['Id'][7:19]}", run.api.remove_image, image["Id"], force=True, noprune=True)
        pending = [image for image in pending if image not in leaves]
    for parent in parents:
        for _ in range(100):  # a Dockerfile has at most a few dozen steps
            info = run.call(f"inspect image {parent[7:19]}", run.api.inspect_image, parent)
            # Only an untagged layer of nobody else: a tagged parent is a lesson image or a name
            # someone holds; a parent labelled for another sandbox is that learner's.
            labels = (info or {}).get("Config", {}).get("Labels") or {}
            if not info or info.get("RepoTags") or policy.LABEL_IMAGE in labels \
                    or labels.get(policy.LABEL_SANDBOX, sandbox_id) != sandbox_id:
                break
            if run.clock() >= run.until:
                run.failed.append(f"image {parent[7:19]} (out of time)")
                break
            try:
                run.api.remove_image(parent, force=False, noprune=True)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    run.failed.append(f"image {parent[7:19]}")
                break  # 409: in use, or the parent of another image (a classmate's build cache): kept
            except ENGINE_FAILURES as exc:
                log.warning("cleanup: image %s failed, will retry: %s", parent[7:19], exc)
                run.failed.append(f"image {parent[7:19]}")
                break
            run.removed.append(f"image {parent[7:19]}")
            parent = info.get("Parent") or ""
            if not parent:
                break


def _owner_has_another_docker_sandbox(run: _Run, owner: str | None, sandbox_id: str) -> bool | None:
    """None when the engine could not say (the namespace then waits for the retry)."""
    if not owner:
        return False
    failures = len(run.failed)
    consoles = run.call("list the learner's sandboxes", run.api.containers, all=True, filters={"label": [
        f"{policy.LABEL_OWNER}={owner}", "tutorial.workspace=docker", f"tutorial.install={settings.INSTALL_ID}"]})
    if len(run.failed) != failures:
        return None
    return any((c.get("Labels") or {}).get(policy.LABEL_SANDBOX) != sandbox_id
               and policy.LABEL_CREATED not in (c.get("Labels") or {}) for c in consoles or [])


def remove_gateway_folder(data_dir: Path, sandbox_id: str) -> None:
    """The sandbox's socket folder and any socket left half-made in the private one."""
    folder = Path(data_dir) / "gateway" / sandbox_id
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)
    for leftover in (Path(data_dir) / "gateway-private").glob(f"{sandbox_id}.*"):
        if not leftover.name.endswith(".pid"):
            leftover.unlink(missing_ok=True)


# -- retries in the background ------------------------------------------------------------------
_sweeping = threading.Lock()
_last_sweep: dict[str, float] = {}


def sweep_soon(data_dir: Path, docker_host: str, *, every: float = RETRY_AFTER) -> threading.Thread | None:
    """Start ``sweep`` in a thread unless one runs or one ran within ``every`` seconds: the caller
    (one learner's stop) never waits for other learners' retries."""
    key = str(data_dir)
    if time.monotonic() - _last_sweep.get(key, float("-inf")) < every or _sweeping.locked():
        return None
    _last_sweep[key] = time.monotonic()

    def work():
        if not _sweeping.acquire(blocking=False):
            return
        try:
            sweep(data_dir, docker_host)
        except Exception:  # noqa: BLE001 - a retry that fails is retried by the next sweep
            log.exception("cleanup sweep failed")
        finally:
            _sweeping.release()

    thread = threading.Thread(target=work, name="gateway-cleanup-sweep", daemon=True)
    thread.start()
    return thread


def sweep(data_dir: Path | None = None, docker_host: str | None = None, *, deadline: float = CALL_DEADLINE,
          retry_after: float = RETRY_AFTER, folder_grace: float = FOLDER_GRACE,
          now: Callable[[], float] = time.time) -> dict[str, list[str]]:
    """Retry ended sandboxes' cleanups, drop tag records whose image is gone, and remove socket
    folders no sandbox container uses. Safe to call at any time from any process."""
    data_dir = Path(data_dir or settings.DATA_DIR)
    docker_host = docker_host or settings.DOCKER_HOST
    state_dir = data_dir / "gateway-state"
    report: dict[str, list[str]] = {"retried": [], "pruned": [], "folders": []}
    client = _client(docker_host, deadline)
    try:
        def present(tag: str) -> bool | None:
            try:
                client.api.inspect_image(tag)
                return True
            except docker.errors.ImageNotFound:
                return False
            except ENGINE_FAILURES:
                return None

        try:
            consoles = {(c.get("Labels") or {}).get(policy.LABEL_SANDBOX) for c in client.api.containers(
                all=True, filters={"label": [f"{LABEL_ROLE}={ROLE_CONSOLE}", f"{LABEL_WORKSPACE}=docker"]})}
        except ENGINE_FAILURES as exc:
            log.warning("cleanup sweep cannot list sandboxes: %s", exc)
            return report
        for sandbox_id in TagBook.sandbox_ids(state_dir):
            book = TagBook(state_dir, sandbox_id)
            record = book.load()
            if "ended" in record and sandbox_id in consoles:
                book.clear_ended()  # started again under the same id: its objects are live
            elif "ended" in record:
                if now() - record["ended"] >= retry_after:
                    book.mark_ended(record.get("failed", []), now())  # the next try waits again
                    _destroy(sandbox_id, data_dir, docker_host, deadline, BUDGET, time.monotonic)
                    report["retried"].append(sandbox_id)
                continue
            elif sandbox_id not in consoles and _age(book.path, now) >= folder_grace:
                # No sandbox container and no cleanup ever ran (the server was down at its end).
                _destroy(sandbox_id, data_dir, docker_host, deadline, BUDGET, time.monotonic)
                report["retried"].append(sandbox_id)
                continue
            report["pruned"] += book.prune(present)
        folders = data_dir / "gateway"
        if folders.is_dir():
            for folder in folders.iterdir():
                if folder.name not in consoles and _age(folder, now) >= folder_grace and not (state_dir / f"{folder.name}.json").exists():
                    remove_gateway_folder(data_dir, folder.name)
                    report["folders"].append(folder.name)
    finally:
        client.close()
    return report


def _age(path: Path, now: Callable[[], float]) -> float:
    try:
        return now() - path.lstat().st_mtime
    except OSError:
        return 0.0


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
