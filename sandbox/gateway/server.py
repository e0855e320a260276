"""One listener per docker-workspace sandbox, at ``<DATA_DIR>/gateway/<uuid>/docker.sock``.

The socket identifies the learner: only that sandbox mounts that folder. Sockets are bound in a
private folder and renamed into the shared one, so a learner who plants a symlink there cannot make
the gateway chmod a host file. The folder (not the socket) is what the sandbox mounts, so a gateway
restart that renames a fresh socket in place does not strand any sandbox.

``GatewayServer.watch`` follows the engine (events plus a periodic list) and opens or closes
listeners as sandboxes come and go; ``ensure_gateway``/``release_gateway`` let the Docker backend
open a listener in-process when no ``run_gateway`` process is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import stat
import weakref
from pathlib import Path

from django.conf import settings

from ..engine.api import unix_path
from ..engine.labels import LABEL_WORKSPACE
from . import cleanup, httpio, policy
from .activity import ActivityRecorder, touch_interval
from .hooks import SiteHooks, installed
from .names import Names
from .policy import Learner, Limits
from .proxy import ConnectionLimits, LearnerProxy
from .registry_api import RegistryApi, bind_in_netns

log = logging.getLogger(__name__)

CLEANUP_CONCURRENCY = 3  # vanished sandboxes cleaned up at once (threads of the default executor)
SWEEP_INTERVAL = 300.0  # seconds between cleanup retry sweeps started by the watcher
SOCKET_NAME = "docker.sock"
# How long a start waits for the gateway process's listener. Without it the learner's first
# `docker` says "Cannot connect to the Docker daemon"; on a loaded machine (load 10 on 2 cores) the
# listener was seen to open 22 s after the container started, so a start waits rather than hand over
# a workspace whose docker does not answer yet. A gateway process that is down is seen before the wait.
GATEWAY_READY_SECONDS = 30.0


def engine_socket_path(docker_host: str | None = None) -> str:
    return unix_path(docker_host or settings.DOCKER_HOST)


def gateway_limits() -> Limits:
    return Limits(**getattr(settings, "GATEWAY_LIMITS", {}))


def connection_limits() -> ConnectionLimits:
    return ConnectionLimits(**getattr(settings, "GATEWAY_CONNECTIONS", {}))


def raise_fd_limit(wanted: int = 65536) -> int:
    """Lift this process's soft limit on open files towards its hard limit; returns the new one.

    Every learner connection holds two descriptors (learner and engine) and an upload two more:
    thirty learners at their connection cap need thousands, past the usual soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


class GatewayServer:
    def __init__(self, data_dir: Path | None = None, docker_host: str | None = None, limits: Limits | None = None,
                 record_activity: bool = True, connections: ConnectionLimits | None = None,
                 hooks: SiteHooks | None = None):
        self.data_dir = Path(data_dir or settings.DATA_DIR)
        self.engine_socket = engine_socket_path(docker_host)
        self.limits = limits or gateway_limits()
        self.connections = connections or connection_limits()
        raise_fd_limit()
        self.registry = getattr(settings, "GATEWAY_REGISTRY", "127.0.0.1:5000")
        self.record_activity = record_activity
        self.hooks = hooks or installed()
        self.servers: dict[str, asyncio.base_events.Server] = {}
        self.learners: dict[str, tuple[Learner, ActivityRecorder | None]] = {}
        # sandbox id -> (its console container's id, the registry API listener in its namespace)
        self.registry_apis: dict[str, tuple[str, asyncio.base_events.Server]] = {}
        self._registry_failed: set[str] = set()
        self._lock = asyncio.Lock()
        self.cleanups: dict[str, asyncio.Task] = {}  # sandbox id -> its running cleanup
        self._cleanup_slots: asyncio.Semaphore | None = None

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "gateway-state"

    @property
    def private_dir(self) -> Path:
        path = self.data_dir / "gateway-private"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def public_dir(self, sandbox_id: str) -> Path:
        path = self.data_dir / "gateway" / sandbox_id
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            # Traversable, not writable, by the sandbox user: it reaches the socket (mode 666)
            # but cannot fill the host disk under DATA_DIR through this mount.
            path.chmod(0o755)
        return path

    def socket_path(self, sandbox_id: str) -> Path:
        return self.data_dir / "gateway" / sandbox_id / SOCKET_NAME

    async def serve(self, sandbox_id: str, owner_id: str, lesson: str = "") -> Path:
        """Open (idempotently) the listener of one sandbox; returns the socket path."""
        async with self._lock:
            public = self.socket_path(sandbox_id)
            if sandbox_id in self.servers and _is_socket(public):
                return public
            old = self.servers.pop(sandbox_id, None)
            if old:
                old.close()
            learner = Learner(sandbox_id=sandbox_id, owner_id=str(owner_id), lesson=lesson, registry=self.registry,
                              install=getattr(settings, "INSTALL_ID", ""))
            recorder = self._activity_recorder(sandbox_id, lesson)
            self.learners[sandbox_id] = (learner, recorder)
            proxy = LearnerProxy(learner, self.engine_socket, self.state_dir, self.limits, on_activity=recorder,
                                 connection_limits=self.connections)
            private = self.private_dir / f"{sandbox_id}.sock"
            private.unlink(missing_ok=True)
            with short_path(private) as bind_path:  # sun_path holds 108 bytes; DATA_DIR may be deep
                server = await asyncio.start_unix_server(proxy.handle, path=bind_path, limit=1 << 20)
            os.chmod(private, 0o666)
            os.rename(private, self.public_dir(sandbox_id) / SOCKET_NAME)
            # What `registry` prints inside the sandbox: the learner's own namespace.
            note = self.private_dir / f"{sandbox_id}.registry"
            note.write_text(f"{learner.registry}/{learner.namespace}\n")
            note.chmod(0o644)
            os.rename(note, self.public_dir(sandbox_id) / "registry")
            self.servers[sandbox_id] = server
            log.info("gateway listening for sandbox %s", sandbox_id)
            return public

    def _activity_recorder(self, sandbox_id: str, lesson: str) -> ActivityRecorder | None:
        if not self.record_activity or self.hooks.touch is None:
            return None
        try:
            idle = self.hooks.idle_seconds(lesson) if self.hooks.idle_seconds else 0
        except Exception:  # noqa: BLE001 - an unknown lesson still counts, at the usual pace
            idle = 0
        return ActivityRecorder(sandbox_id, self.hooks.touch, touch_interval(idle))

    async def open_registry_api(self, sandbox_id: str, container_id: str) -> bool:
        """Serve the read-only registry API at the registry's address inside this sandbox (see
        ``registry_api``). Idempotent per container; False (and one warning) when it cannot."""
        current = self.registry_apis.get(sandbox_id)
        if current and current[0] == container_id:
            return True
        if sandbox_id not in self.learners or container_id in self._registry_failed:
            return False
        if current:
            current[1].close()
            del self.registry_apis[sandbox_id]
        learner, recorder = self.learners[sandbox_id]
        host, _, port = learner.registry.rpartition(":")
        try:
            info = await self._engine_json(f"/containers/{container_id}/json")
            pid = int((info.get("State") or {}).get("Pid") or 0)
            if not pid:
                return False
            sock = await asyncio.to_thread(bind_in_netns, pid, host, int(port))
            server = await asyncio.start_server(RegistryApi(learner, recorder).handle, sock=sock, limit=1 << 16)
        except (OSError, ValueError, httpio.HttpError) as exc:
            self._registry_failed.add(container_id)
            log.warning("no registry API inside sandbox %s (the gateway needs root for it): %s", sandbox_id, exc)
            return False
        self.registry_apis[sandbox_id] = (container_id, server)
        return True

    async def stop(self, sandbox_id: str) -> None:
        self.learners.pop(sandbox_id, None)
        registry_api = self.registry_apis.pop(sandbox_id, None)
        if registry_api:
            registry_api[1].close()
        server = self.servers.pop(sandbox_id, None)
        if server is None:
            return
        server.close()
        public = self.socket_path(sandbox_id)
        if _is_socket(public):
            public.unlink(missing_ok=True)

    async def close(self) -> None:
        for sandbox_id in list(self.servers):
            await self.stop(sandbox_id)

    # -- following the engine -------------------------------------------------------------------
    async def _engine_json(self, path: str, query: str = "") -> object:
        reader, writer = await asyncio.open_unix_connection(self.engine_socket)
        try:
            writer.write(f"GET /{policy.API_VERSION}{path}{query} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n".encode())
            head = await httpio.read_response_head(reader)
            return json.loads(await httpio.read_response_body(reader, httpio.response_framing(head, "GET")))
        finally:
            writer.close()

    async def reconcile(self, cleanup_vanished: bool = True) -> None:
        from urllib.parse import quote

        filters = quote(json.dumps({"label": [f"{LABEL_WORKSPACE}=docker"], "status": ["running", "created", "restarting"]}))
        containers = await self._engine_json("/containers/json", f"?all=1&filters={filters}")
        live = {}
        running = {}
        for container in containers:
            labels = container.get("Labels") or {}
            # Another install's console is not ours to serve (an unlabelled one predates install labels).
            if labels.get(policy.LABEL_SANDBOX) and policy.LABEL_CREATED not in labels and labels.get(
                    policy.LABEL_INSTALL, settings.INSTALL_ID) == settings.INSTALL_ID:
                live[labels[policy.LABEL_SANDBOX]] = labels
                if container.get("State") == "running":
                    running[labels[policy.LABEL_SANDBOX]] = container["Id"]
        for sandbox_id, labels in live.items():
            if sandbox_id not in self.servers or not _is_socket(self.socket_path(sandbox_id)):
                try:
                    await self.serve(sandbox_id, labels.get(policy.LABEL_OWNER, "0"), labels.get(policy.LABEL_LESSON, ""))
                except OSError as exc:
                    log.warning("cannot open the gateway of sandbox %s: %s", sandbox_id, exc)
                    continue
            if sandbox_id in running:
                await self.open_registry_api(sandbox_id, running[sandbox_id])
        for sandbox_id in list(self.servers):
            if sandbox_id not in live:
                await self.stop(sandbox_id)
                if cleanup_vanished:
                    self.start_cleanup(sandbox_id)

    def start_cleanup(self, sandbox_id: str) -> asyncio.Task:
        """Clean up after a vanished sandbox in the background: on a wedged engine one cleanup
        takes up to its budget plus a deadline (about 75 s), and the watcher must go on opening
        new sandboxes' listeners meanwhile. At most ``CLEANUP_CONCURRENCY`` run at once (each
        holds a thread of the loop's default executor), never two for one sandbox."""
        running = self.cleanups.get(sandbox_id)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self._cleanup(sandbox_id), name=f"gateway-cleanup-{sandbox_id}")
        self.cleanups[sandbox_id] = task

        def forget(done: asyncio.Task) -> None:
            if self.cleanups.get(sandbox_id) is done:
                del self.cleanups[sandbox_id]

        task.add_done_callback(forget)
        return task

    async def _cleanup(self, sandbox_id: str) -> None:
        if self._cleanup_slots is None:
            self._cleanup_slots = asyncio.Semaphore(CLEANUP_CONCURRENCY)
        async with self._cleanup_slots:
            try:
                await asyncio.to_thread(cleanup.destroy_learner_objects, sandbox_id, data_dir=self.data_dir)
            except Exception:  # noqa: BLE001 - what is left is retried by the cleanup sweep
                log.exception("cleanup of sandbox %s failed", sandbox_id)

    async def enforce_disk_cap(self) -> list[str]:
        """Kill running learner containers whose writable layer holds more than
        ``limits.container_disk_max`` and tell their learner's console why; returns their ids."""
        from urllib.parse import quote

        filters = quote(json.dumps({"label": [f"{policy.LABEL_CREATED}={policy.CREATED_VALUE}"], "status": ["running"]}))
        killed = []
        for container in await self._engine_json("/containers/json", f"?size=1&filters={filters}"):
            if (container.get("SizeRw") or 0) <= self.limits.container_disk_max:
                continue
            await self._engine_post(f"/containers/{container['Id']}/kill")
            killed.append(container["Id"])
            name = (container.get("Names") or ["/?"])[0].lstrip("/")
            sandbox_id = (container.get("Labels") or {}).get(policy.LABEL_SANDBOX)
            if sandbox_id:
                name = Names(sandbox_id).learner(name)  # the name the learner gave it
            log.warning("killed container %s of sandbox %s: it wrote %s bytes", name, sandbox_id, container.get("SizeRw"))
            if sandbox_id and self.hooks.notify is not None:
                with contextlib.suppress(Exception):  # no channel layer here: the kill stands
                    await self.hooks.notify(sandbox_id, (
                        f"Your container {name} was stopped: it wrote more than "
                        f"{self.limits.container_disk_max >> 20} MiB inside itself (the classroom's limit). "
                        "Keep what containers write small (docker ps -s shows it)."))
        return killed

    async def _engine_post(self, path: str) -> int:
        reader, writer = await asyncio.open_unix_connection(self.engine_socket)
        try:
            writer.write(f"POST /{policy.API_VERSION}{path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n".encode())
            head = await httpio.read_response_head(reader)
            return httpio.status_of(head)
        finally:
            writer.close()

    async def watch(self, interval: float = 2.0, sweep_interval: float | None = None) -> None:
        """Follow the engine for ever: react to container events at once, re-list every interval,
        and start the cleanup retry sweep at once and every ``sweep_interval`` (``SWEEP_INTERVAL``):
        without it, a failed cleanup waited for the next sandbox to start or end, which in a quiet
        class is never."""
        wake = asyncio.Event()
        events = asyncio.create_task(self._follow_events(wake))
        loop = asyncio.get_running_loop()
        next_disk_check = loop.time() + self.limits.disk_check_interval
        next_sweep = loop.time()
        sweep_interval = sweep_interval or SWEEP_INTERVAL
        try:
            while True:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + sweep_interval
                    # A thread of its own, at most one at a time: the watcher never waits for it.
                    cleanup.sweep_soon(self.data_dir, f"unix://{self.engine_socket}")
                try:
                    await self.reconcile()
                    if loop.time() >= next_disk_check:
                        next_disk_check = loop.time() + self.limits.disk_check_interval
                        await self.enforce_disk_cap()
                except (OSError, ValueError, httpio.HttpError) as exc:
                    log.warning("gateway cannot reach the engine: %s", exc)
                wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), interval)
        finally:
            events.cancel()

    async def _follow_events(self, wake: asyncio.Event) -> None:
        from urllib.parse import quote

        filters = quote(json.dumps({"type": ["container"], "label": [f"{LABEL_WORKSPACE}=docker"],
                                    "event": ["start", "die", "destroy"]}))
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self.engine_socket)
                writer.write(f"GET /{policy.API_VERSION}/events?filters={filters} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
                await httpio.read_response_head(reader)
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    if b"{" in line:
                        wake.set()
            except (OSError, ValueError, httpio.HttpError):
                pass
            await asyncio.sleep(1)


@contextlib.contextmanager
def short_path(path: Path):
    """A name for ``path`` short enough for a unix socket address: through /proc/self/fd."""
    if len(str(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


# -- the gateway process, and the in-process fallback -------------------------------------------
def manager_pid_file(data_dir: Path | None = None) -> Path:
    return Path(data_dir or settings.DATA_DIR) / "gateway-private" / "run_gateway.pid"


def gateway_process_running(data_dir: Path | None = None) -> bool:
    try:
        pid = int(manager_pid_file(data_dir).read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# In-process servers, per event loop (a test's loop ends with its test) and per DATA_DIR.
_embedded: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, GatewayServer]]" = weakref.WeakKeyDictionary()


def _embedded_server(create: bool = True) -> GatewayServer | None:
    servers = _embedded.setdefault(asyncio.get_running_loop(), {})
    server = servers.get(str(settings.DATA_DIR))
    if server is None and create:
        server = servers[str(settings.DATA_DIR)] = GatewayServer()
    return server


async def ensure_gateway(sandbox_id: str, owner_id: str | int, lesson: str = "") -> None:
    """Make sure this sandbox's socket answers: served in-process unless ``run_gateway`` runs.

    The in-process listener lives in the running event loop (Daphne's, or a test's). When the
    ``run_gateway`` process serves, it opens the listener on the engine's start event, a moment
    after the start: wait for it (bounded), or the learner's first `docker` command, typed as soon
    as the prompt shows, finds no daemon."""
    if gateway_process_running():
        await wait_for_listener(Path(settings.DATA_DIR) / "gateway" / sandbox_id / SOCKET_NAME)
        return
    server = _embedded_server()
    await server.serve(sandbox_id, str(owner_id), lesson)
    from urllib.parse import quote

    filters = quote(json.dumps({"label": [f"{policy.LABEL_SANDBOX}={sandbox_id}", f"{LABEL_WORKSPACE}=docker"],
                                "status": ["running"]}))
    try:
        for container in await server._engine_json("/containers/json", f"?filters={filters}"):
            if policy.LABEL_CREATED not in (container.get("Labels") or {}):
                await server.open_registry_api(sandbox_id, container["Id"])
    except (OSError, ValueError, httpio.HttpError) as exc:
        log.warning("no registry API inside sandbox %s: %s", sandbox_id, exc)


async def wait_for_listener(path: Path, seconds: float = GATEWAY_READY_SECONDS) -> bool:
    """True once something accepts on the unix socket ``path``; False after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            with short_path(path) as connect_path:
                _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(connect_path), 1)
            writer.close()
            return True
        except (OSError, asyncio.TimeoutError):
            pass
        if loop.time() >= deadline:
            log.warning("the gateway process opened no listener at %s within %s s", path, seconds)
            return False
        await asyncio.sleep(0.05)


async def release_gateway(sandbox_id: str) -> None:
    server = _embedded_server(create=False)
    if server is not None:
        await server.stop(sandbox_id)
