"""Preflight checks of every dependency of a classroom (``manage.py doctor``).

Each check is a small function returning a :class:`Finding` ``(ok, message, fix)``: ``message``
says what was found (a version, a number, or what went wrong), ``fix`` says what to do about a
failure (empty when ok). A check never raises: an unexpected error is a failed finding that
names it. :data:`CHECKS` lists them in the order the command runs them; a failed *required* check
makes the command exit non-zero, an optional one is a warning.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import docker
from django.conf import settings

from lessons.catalogue import all_lessons
from sandbox import local_cluster
from sandbox.backends import k8s_api
from sandbox.engine.api import engine_down_message
from sandbox.images.recipes import RECIPES, image_tag

from . import pod_cluster

# One slow dependency must not hang the preflight: every network call has this deadline.
TIMEOUT_SECONDS = 5
GIB = 1024**3


class Finding(NamedTuple):
    ok: bool
    message: str
    fix: str = ""


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    title: str
    func: Callable[[], Finding]
    required: bool = True

    def run(self) -> Finding:
        try:
            return self.func()
        except Exception as exc:  # noqa: BLE001 - a preflight reports, it never crashes
            return Finding(False, f"the check itself failed: {type(exc).__name__}: {exc}",
                           "Report this with the output of `manage.py doctor`.")


def _docker_client() -> docker.DockerClient:
    return docker.DockerClient(base_url=settings.DOCKER_HOST, timeout=TIMEOUT_SECONDS)


def _engine_failure(docker_host: str, exc: Exception) -> Finding:
    """Turn a connection error into what is wrong and the fix for that cause."""
    text = str(exc)
    socket_path = docker_host.removeprefix("unix://") if docker_host.startswith("unix://") else ""
    if socket_path and not Path(socket_path).exists():
        return Finding(
            False,
            f"no Docker engine socket at {socket_path} (DOCKER_HOST={docker_host})",
            "Start the engine (`scripts/start-dockerd.sh`, or `systemctl start docker`), or set DOCKER_HOST "
            "to the engine's socket. Under docker compose, mount the host's /var/run/docker.sock.",
        )
    if "Permission denied" in text or "PermissionError" in text:
        return Finding(
            False,
            f"not allowed to use the engine socket at {docker_host}: {text}",
            "Run the site as a user in the socket's group (`getent group docker`); under docker compose, "
            "set DOCKER_GID in .env to that group's id.",
        )
    return Finding(
        False,
        engine_down_message(docker_host, text),
        "Start the engine (`scripts/start-dockerd.sh`, or `systemctl start docker`) and check DOCKER_HOST.",
    )


# --- the checks ---------------------------------------------------------------------------------
MIN_ENGINE_API = (1, 41)  # Docker 20.10: the oldest engine the sandbox configs are tested on


def check_engine() -> Finding:
    """The Docker engine answers at DOCKER_HOST, and is new enough."""
    try:
        version = _docker_client().version()
    except Exception as exc:  # noqa: BLE001 - every failure here means "no usable engine"
        return _engine_failure(settings.DOCKER_HOST, exc)
    api = version.get("ApiVersion", "0.0")
    found = tuple(int(part) for part in api.split(".")[:2])
    message = f"Docker {version.get('Version', '?')} (API {api}) at {settings.DOCKER_HOST}"
    if found < MIN_ENGINE_API:
        return Finding(False, f"{message} is too old",
                       f"Upgrade the engine to API {'.'.join(map(str, MIN_ENGINE_API))} (Docker 20.10) or newer.")
    return Finding(True, message)


def check_cgroup_limits() -> Finding:
    """The engine can enforce every limit a sandbox gets: memory (with swap), CPU quota and pids."""
    try:
        info = _docker_client().info()
    except Exception as exc:  # noqa: BLE001
        return _engine_failure(settings.DOCKER_HOST, exc)
    wanted = {"MemoryLimit": "memory", "SwapLimit": "swap", "CpuCfsQuota": "CPU quota", "PidsLimit": "pids"}
    missing = [label for key, label in wanted.items() if not info.get(key)]
    where = f"cgroup v{info.get('CgroupVersion', '?')}, driver {info.get('CgroupDriver', '?')}"
    if missing:
        return Finding(
            False,
            f"the engine cannot enforce {', '.join(missing)} limits ({where}); a learner could take the machine",
            "Enable the missing cgroup controllers: on the kernel command line add "
            "`cgroup_enable=memory swapaccount=1` (or boot with cgroup v2: `systemd.unified_cgroup_hierarchy=1`), "
            "reboot, and check `docker info` shows no 'No ... limit support' warnings.",
        )
    return Finding(True, f"memory, swap, CPU quota and pids limits enforceable ({where})")


def check_images() -> Finding:
    """Every sandbox image the project builds is present on the engine."""
    try:
        client = _docker_client()
        tags = {tag for image in client.images.list() for tag in image.tags}
    except Exception as exc:  # noqa: BLE001
        return _engine_failure(settings.DOCKER_HOST, exc)
    wanted = [image_tag(name) for name in RECIPES]
    missing = [tag for tag in wanted if tag not in tags]
    if missing:
        return Finding(False, f"sandbox images not built: {', '.join(missing)}",
                       "Build them: `python manage.py build_images` (offline; needs busybox-static, bash-static, jq, curl, ca-certificates and docker.io).")
    return Finding(True, f"{len(wanted)} sandbox images built ({', '.join(wanted)})")


def check_registry() -> Finding:
    """The classroom registry answers the Docker registry API (``/v2/``)."""
    base = settings.TUTORIAL_REGISTRY_URL or f"http://{getattr(settings, 'GATEWAY_REGISTRY', '127.0.0.1:5000')}"
    url = base.rstrip("/") + "/v2/"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - operator's URL
            status = response.status
            api = response.headers.get("Docker-Distribution-Api-Version", "")
    except urllib.error.HTTPError as exc:
        # 401 is a registry that wants credentials: it is there.
        status, api = exc.code, exc.headers.get("Docker-Distribution-Api-Version", "")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Finding(
            False,
            f"no registry at {url}: {reason}",
            "Start it: `scripts/start-registry.sh` (Debian's docker-registry on 127.0.0.1:5000), or the `registry` "
            "service of docker-compose.yml; set TUTORIAL_REGISTRY_URL to where the site reaches it.",
        )
    if status in (200, 401) and api.startswith("registry/2"):
        return Finding(True, f"registry API {api} at {url} (HTTP {status})")
    return Finding(False, f"{url} answered HTTP {status} but is not a Docker registry (API header {api!r})",
                   "Point TUTORIAL_REGISTRY_URL at the registry itself, not a proxy or another service.")


def check_channel_layer() -> Finding:
    """A message sent on the channel layer comes back: what carries events between processes."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return Finding(False, "no channel layer is configured", "Set CHANNEL_LAYERS (REDIS_URL for a classroom).")
    name = type(layer).__name__
    token = uuid.uuid4().hex

    async def round_trip() -> dict:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "doctor.ping", "token": token})
        return await asyncio.wait_for(layer.receive(channel), TIMEOUT_SECONDS)

    try:
        reply = asyncio.run(round_trip())
    except Exception as exc:  # noqa: BLE001
        return Finding(
            False,
            f"{name}: no round trip: {type(exc).__name__}: {exc}",
            "Start Redis and check REDIS_URL (e.g. redis://redis:6379/0 under compose, or "
            "`scripts/start-postgres-redis.sh` on one machine).",
        )
    if reply.get("token") != token:
        return Finding(False, f"{name}: a different message came back", "Give this site its own Redis database number.")
    if name == "InMemoryChannelLayer":
        return Finding(True, "in-memory channel layer (one server process only; set REDIS_URL for several)")
    return Finding(True, f"{name} round trip ok")


def check_database() -> Finding:
    """The database answers and every migration is applied."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001
        return Finding(False, f"{connection.vendor} database not reachable: {exc}",
                       "Check DATABASE_URL (host, port, user, password, database) and that the server runs.")
    where = f"{connection.vendor} {connection.settings_dict.get('NAME')}"
    if plan:
        return Finding(False, f"{where}: {len(plan)} migrations not applied", "Run `python manage.py migrate`.")
    return Finding(True, f"{where}: reachable, migrations applied")


def kubernetes_lessons() -> list[str]:
    """Slugs of the lessons that need a Kubernetes cluster."""
    return [lesson.slug for lesson in all_lessons() if lesson.workspace == "kubernetes"]


def check_cluster() -> Finding:
    """The Kubernetes cluster answers, when any lesson uses a Kubernetes workspace."""
    lessons = kubernetes_lessons()
    if not lessons:
        return Finding(True, "no Kubernetes lessons: no cluster needed")
    from kubernetes import client, config

    waiting, preparing = local_cluster.operator_problem(settings)
    if waiting:
        return Finding(False, f"{len(lessons)} Kubernetes lessons; the local cluster is not ready: {waiting}",
                       "Wait for the build to finish (`.venv/bin/python -m cluster status`; log: data/cluster/up.log)"
                       if preparing else "Run `.venv/bin/python -m cluster up` (or `make run`); its output says what is wrong. "
                       "To use kind, k3s or a managed cluster instead, set TUTORIAL_KUBECONFIG (docs/kubernetes.md).")
    kubeconfig = getattr(settings, "KUBERNETES_KUBECONFIG", "") or None  # None: $KUBECONFIG or ~/.kube/config
    context = getattr(settings, "KUBERNETES_CONTEXT", "") or None
    try:
        if k8s_api.in_cluster(kubeconfig or ""):  # the site as a pod: its own service account
            api_client = client.ApiClient(k8s_api.load_config(kubeconfig or "", context or "").configuration)
        else:
            api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # noqa: BLE001 - missing file, bad YAML, no current context
        return Finding(
            False,
            f"{len(lessons)} Kubernetes lessons, but no usable kubeconfig ({exc})",
            "Set TUTORIAL_KUBECONFIG (and TUTORIAL_K8S_CONTEXT) to a working kubeconfig, or unset it to use this "
            "machine's local cluster (`python -m cluster up`); see docs/kubernetes.md and docs/self-hosting.md.",
        )
    try:
        with api_client:
            version = client.VersionApi(api_client).get_code(_request_timeout=TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001
        return Finding(False, f"the Kubernetes cluster does not answer: {exc}",
                       "Start the cluster: the local one with `.venv/bin/python -m cluster up`; kind with "
                       "`docker start <name>-control-plane`; or fix TUTORIAL_KUBECONFIG.")
    return Finding(True, f"Kubernetes {version.git_version} answers ({len(lessons)} lessons use it)")


def pod_workloads() -> list[pod_cluster.PodWorkload]:
    """The kinds of pod this site makes on the cluster (none when every sandbox is a container)."""
    lessons = all_lessons()
    found = []
    if getattr(settings, "PLAIN_BACKEND", "docker") == "pod":
        images = sorted({image_tag(lesson.image) for lesson in lessons if lesson.workspace == "plain"})
        found.append(pod_cluster.PodWorkload("plain sandboxes", settings.SANDBOX_POD_NAMESPACE, tuple(images)))
    if getattr(settings, "KUBERNETES_TOOLBOX", "docker") == "pod" and any(lesson.workspace == "kubernetes" for lesson in lessons):
        found.append(pod_cluster.PodWorkload("Kubernetes-lesson toolboxes", settings.KUBERNETES_TOOLS_NAMESPACE,
                                             (image_tag("toolbox"),)))
    return found


def registry_has_image(image: str) -> bool | str:
    """Whether the classroom registry (as the site reaches it) holds ``image`` (``tutorial/base:latest``)."""
    base = settings.TUTORIAL_REGISTRY_URL or f"http://{getattr(settings, 'GATEWAY_REGISTRY', '127.0.0.1:5000')}"
    repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    request = urllib.request.Request(f"{base.rstrip('/')}/v2/{repository}/manifests/{tag}", method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):  # noqa: S310 - operator's URL
            return True
    except urllib.error.HTTPError as exc:
        return False if exc.code == 404 else f"HTTP {exc.code} from {base}"
    except (urllib.error.URLError, OSError) as exc:
        return f"no registry at {base}: {getattr(exc, 'reason', exc)}"


def check_pod_cluster(api=None, image_present=None) -> Finding:
    """When plain sandboxes or Kubernetes-lesson toolboxes are pods: the cluster answers, their
    namespaces are usable, the site's account holds every right the pod backend uses there
    (``SelfSubjectAccessReview``), and their images are in the registry the nodes pull from."""
    workloads = pod_workloads()
    if not workloads:
        return Finding(True, "no sandbox runs as a pod: nothing to check")
    if api is None:
        try:
            config = k8s_api.load_config(getattr(settings, "KUBERNETES_KUBECONFIG", ""), getattr(settings, "KUBERNETES_CONTEXT", ""))
        except Exception as exc:  # noqa: BLE001 - no kubeconfig, bad YAML, no service account
            return Finding(False, f"{', '.join(w.what for w in workloads)} are pods, but no cluster is configured: {exc}",
                           "Set TUTORIAL_KUBECONFIG to the cluster's kubeconfig (docs/kubernetes.md), or set "
                           "TUTORIAL_PLAIN_BACKEND and TUTORIAL_KUBERNETES_TOOLBOX back to docker.")
        api = k8s_api.ClusterAPI(lambda: config)
    source = getattr(getattr(api, "config", None), "source", "the site's account")

    async def run():
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS * 6):
                return await pod_cluster.probe(api, workloads, image_present or _in_thread(registry_has_image),
                                               source=source)
        finally:
            close = getattr(api, "close", None)
            if close is not None:
                await close()

    try:
        problems, version = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - unreachable, timed out
        return Finding(False, f"the Kubernetes cluster does not answer ({source}): {exc}",
                       "Start it (`.venv/bin/python -m cluster up` for the local one) or fix TUTORIAL_KUBECONFIG.")
    if problems:
        return Finding(False, "; ".join(p.message for p in problems), " ".join(dict.fromkeys(p.fix for p in problems)))
    return Finding(True, f"Kubernetes {version}: " + "; ".join(
        f"{w.what} in {w.namespace} ready ({len(w.images)} images in the registry)" for w in workloads))


def _in_thread(func):
    async def call(*args):
        return await asyncio.to_thread(func, *args)
    return call


def _free_space(paths: dict[str, Path]) -> Finding:
    low, seen = [], []
    for label, path in paths.items():
        usage = shutil.disk_usage(path)
        seen.append(f"{label} {usage.free / GIB:.1f} GiB free")
        if usage.free < settings.DOCTOR_MIN_FREE_BYTES:
            low.append(f"{label} ({path}) has {usage.free / GIB:.1f} GiB free")
    if low:
        return Finding(
            False,
            f"low disk: {'; '.join(low)}; below {settings.DOCTOR_MIN_FREE_BYTES / GIB:.0f} GiB sandboxes fail to start",
            "Free space (`docker system prune` removes stopped containers and dangling images; "
            "`python manage.py reap_sandboxes` removes ended sandboxes) or give the engine a bigger disk.",
        )
    return Finding(True, ", ".join(seen))


def check_disk() -> Finding:
    """Free space where the site keeps its data and where the engine keeps images and containers."""
    paths = {"data": Path(settings.DATA_DIR)}
    try:
        root = _docker_client().info().get("DockerRootDir", "")
    except Exception:  # noqa: BLE001 - the engine check reports that; still check our own disk
        root = ""
    # The engine's directory is visible only when it runs on this machine (not from a container).
    if root and Path(root).is_dir():
        paths["engine"] = Path(root)
    return _free_space(paths)


def check_static_files() -> Finding:
    """With hashed static names (DEBUG off), collectstatic has run, or every page would fail."""
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.utils.module_loading import import_string

    backend = settings.STORAGES.get("staticfiles", {}).get("BACKEND", "")
    if not backend or not issubclass(import_string(backend), ManifestFilesMixin):
        return Finding(True, "static files served from the source folders (DEBUG mode)")
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if not manifest.is_file():
        return Finding(False, f"no {manifest}: static files were not collected",
                       "Run `python manage.py collectstatic --noinput` (the site's Dockerfile does).")
    return Finding(True, f"static files collected in {settings.STATIC_ROOT}")


CHECKS: list[Check] = [
    Check("engine", "Docker engine", check_engine),
    Check("cgroups", "sandbox limits enforceable", check_cgroup_limits),
    Check("images", "sandbox images built", check_images),
    Check("registry", "classroom registry", check_registry, required=False),
    Check("channels", "channel layer round trip", check_channel_layer),
    Check("database", "database", check_database),
    # Required once a cluster is configured (TUTORIAL_KUBECONFIG); else a warning that the
    # Kubernetes lessons will not start (see checks_named).
    Check("cluster", "Kubernetes cluster", check_cluster, required=False),
    # Required when it applies: with sandboxes or toolboxes as pods, nothing starts without it.
    Check("pods", "sandbox pods on the cluster", check_pod_cluster),
    Check("disk", "free disk", check_disk),
    Check("static", "static files", check_static_files),
]


def checks_named(names: list[str] | None, *, require_registry: bool = False) -> list[Check]:
    """The checks to run (all by default); unknown names are a clear error."""
    known = {check.name: check for check in CHECKS}
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise ValueError(f"unknown check {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[name] for name in names] if names else list(CHECKS)
    promoted = {"registry"} if require_registry else set()
    if getattr(settings, "KUBERNETES_KUBECONFIG", ""):
        promoted.add("cluster")
    return [dataclasses.replace(c, required=True) if c.name in promoted else c for c in chosen]
