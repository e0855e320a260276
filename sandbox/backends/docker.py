"""The Docker engine backend for ``plain`` and ``docker`` workspaces.

Creating a container uses the docker SDK off the event loop; every call about an existing
container (inspect, kill, remove, exec) and the console and check streams use asyncio on the
engine's socket (``sandbox.engine.client``), each with a deadline: the engine keeps a container whose
attach nobody reads alive, and every call about it hangs until that attach goes (moby#41827), so
an unbounded call there once hung Stop and every reaper pass behind it. A thread stuck in such a
call would also hold one of the few executor threads every SDK call shares; a timed-out request on
the event loop just closes its connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from pathlib import Path
from typing import BinaryIO

import docker
import docker.errors
import requests.exceptions
from django.conf import settings

from sandbox.engine import client as engine_client
from sandbox.engine.api import SDK_API_VERSION, engine_down_message
from sandbox.gateway.cleanup import destroy_learner_objects
from sandbox.gateway.names import Names
from sandbox.gateway.policy import CREATED_VALUE, LABEL_CREATED
from sandbox.gateway.server import ensure_gateway, release_gateway

from .base import (
    LABEL_INSTALL,
    LABEL_ROLE,
    LABEL_SANDBOX,
    ROLE_CONSOLE,
    BackendError,
    ConsoleStream,
    EngineState,
    EngineTimeout,
    EngineUnavailable,
    PublishedPort,
    RunResult,
    SandboxBackend,
    SandboxSpec,
    SandboxStuck,
)
from . import docker_home
from .blocking import run_blocking
from .manifests import sandbox_container_config

log = logging.getLogger(__name__)

TIMEOUT_MARKER = "__TUTORIAL_SCRIPT_TIMED_OUT__"
# Checks and setup scripts run under this guard ($1: the script, $2: seconds). Killing only the
# script's shell at the deadline would leave what it started (a check's `sleep 600`) holding the
# sandbox's pids, so the script gets a session of its own and a watchdog kills the whole process
# group, leaving a marker that tells a timeout from the script's own SIGKILL (e.g. the OOM killer).
TIMEOUT_GUARD = f"""setsid sh -c "$1" &
pid=$!
setsid sh -c "sleep $2; echo; echo {TIMEOUT_MARKER}; kill -9 -$pid $pid" 2>/dev/null &
watchdog=$!
wait $pid
code=$?
kill -9 -$watchdog $watchdog 2>/dev/null
exit $code
"""


class DockerConsole(ConsoleStream):
    def __init__(self, stream: engine_client.HijackedStream):
        self._stream = stream

    async def read(self, max_bytes: int = 65536) -> bytes:
        return await self._stream.read(max_bytes)

    async def write(self, data: bytes) -> None:
        await self._stream.write(data)

    async def close(self) -> None:
        await self._stream.close()


def stuck_message(names: list[str]) -> str:
    return (f"The engine has not let go of this sandbox ({', '.join(names)} would not stop: a console "
            "nobody reads still holds it). It was set aside and is removed automatically once the engine "
            "lets go; start it again in a minute.")


class DockerBackend(SandboxBackend):
    workspaces = ("plain", "docker")
    # Kept through the engine's own exec streams (docker_home).
    keeps_home_files = True

    #: Deadlines (seconds) of engine calls. A kill or removal that takes longer means the container
    #: is wedged, not slow (a healthy one goes in well under a second, a busy engine in a few).
    remove_seconds: float = 15.0
    #: Listings, inspects, exec create/inspect.
    call_seconds: float = 30.0
    #: Creating and starting a container (a class starting at once queues on the engine).
    create_seconds: float = 60.0
    #: Removing what a learner made through the gateway (images, registry repositories).
    learner_cleanup_seconds: float = 120.0

    def __init__(self, docker_host: str | None = None):
        self.docker_host = docker_host or settings.DOCKER_HOST
        self._client: docker.DockerClient | None = None

    # -- helpers --------------------------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            # A fixed API version: no version probe at construction, so "engine down" surfaces
            # inside _call as one clear error. 1.41 is Debian 12's engine; newer engines accept it.
            self._client = docker.DockerClient(base_url=self.docker_host, version=SDK_API_VERSION, timeout=60)
        return self._client

    async def _call(self, func, *args, deadline: float | None = None, **kwargs):
        """Run a blocking SDK call in a thread, translating 'engine down' into one clear error.
        Past ``deadline`` seconds (``call_seconds`` by default) it raises :class:`EngineTimeout`;
        the thread itself ends at the client's own timeout."""
        deadline = self.call_seconds if deadline is None else deadline
        try:
            return await asyncio.wait_for(run_blocking(func, *args, **kwargs), deadline)
        except asyncio.TimeoutError:
            raise EngineTimeout(f"the Docker engine did not answer within {deadline:g}s") from None
        except requests.exceptions.Timeout as exc:
            raise EngineTimeout(f"the Docker engine did not answer in time ({exc})") from exc
        except (requests.exceptions.ConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
            self._client = None
            raise EngineUnavailable(engine_down_message(self.docker_host)) from exc
        except docker.errors.DockerException as exc:
            if "Error while fetching server API version" in str(exc):
                self._client = None
                raise EngineUnavailable(engine_down_message(self.docker_host)) from exc
            raise

    def gateway_dir(self, sandbox_id: str) -> str:
        """The host directory bind-mounted into a docker-workspace sandbox for its gateway socket."""
        path = Path(settings.DATA_DIR) / "gateway" / sandbox_id
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)  # the sandbox user reaches the socket (mode 666) but cannot write here
        return str(path)

    # -- the contract ---------------------------------------------------------------------------
    async def create(self, spec: SandboxSpec) -> str:
        await self.destroy(spec.sandbox_id)
        gateway_dir = self.gateway_dir(spec.sandbox_id) if spec.workspace == "docker" else None
        config = sandbox_container_config(spec, gateway_dir=gateway_dir)
        try:
            container = await self._call(self.client.containers.create, deadline=self.create_seconds, **config)
            await self._call(container.start, deadline=self.create_seconds)
            if spec.workspace == "docker":
                # The learner's `docker` answers within the start: in-process unless run_gateway runs.
                await ensure_gateway(spec.sandbox_id, spec.owner_id, spec.lesson)
        except docker.errors.ImageNotFound as exc:
            await self._clean_up_failed_create(spec.sandbox_id)
            raise BackendError(
                f"The sandbox image {spec.image} is not built. Run `.venv/bin/python manage.py build_images`."
            ) from exc
        except docker.errors.APIError as exc:
            await self._clean_up_failed_create(spec.sandbox_id)
            raise BackendError(f"The Docker engine could not start the sandbox: {exc.explanation or exc}") from exc
        except EngineTimeout:
            # The engine may still finish making it: whatever it made goes (now, or as an orphan).
            await self._clean_up_failed_create(spec.sandbox_id)
            raise
        return container.id

    async def _clean_up_failed_create(self, sandbox_id: str) -> None:
        try:
            await self.destroy(sandbox_id)
        except BackendError as exc:  # the create's own error is the one to report
            log.warning("could not remove what a failed start of sandbox %s made: %s", sandbox_id, exc)

    async def destroy(self, sandbox_id: str) -> None:
        """Kill and force-remove every container labelled for the sandbox, then its networks and
        volumes, each call with a deadline. A container that will not go is left aside and, once
        the rest is removed, reported with :class:`SandboxStuck` (a later destroy tries again)."""
        label = f"{LABEL_SANDBOX}={sandbox_id}"
        # Listings come from the engine's in-memory view: they answer even while a container is wedged.
        stuck: list[str] = []
        problems: list[str] = []
        for container in await self.labelled("containers", [label]):
            name = (container.get("Names") or [container["Id"][:12]])[0].lstrip("/")
            try:
                await self.remove_container(container["Id"])
            except EngineTimeout:
                log.warning("sandbox %s: container %s did not stop within %gs; set aside", sandbox_id, name,
                            self.remove_seconds)
                stuck.append(name)
            except BackendError as exc:
                problems.append(f"container {name}: {exc}")
        for network in await self.labelled("networks", [label]):
            problem = await self._remove(f"/networks/{network['Id']}", "network", network.get("Name", ""))
            if problem:
                problems.append(problem)
        for volume in await self.labelled("volumes", [label]):
            problem = await self._remove(f"/volumes/{volume['Name']}", "volume", volume["Name"], {"force": 1})
            if problem:
                problems.append(problem)
        # What the learner made through the docker gateway: built images, tags, registry repositories.
        await release_gateway(sandbox_id)
        if stuck:
            # The gateway's cleanup would block a thread on the stuck container: next time.
            raise SandboxStuck(stuck_message(stuck))
        if problems:
            raise BackendError("could not remove everything of the sandbox: " + "; ".join(problems))
        await self._call(destroy_learner_objects, sandbox_id, docker_host=self.docker_host,
                         deadline=self.learner_cleanup_seconds)

    async def labelled(self, kind: str, labels: list[str], *, all_containers: bool = True) -> list[dict]:
        """Containers, networks or volumes carrying every one of ``labels`` (``key`` or
        ``key=value``), as the engine lists them; within ``call_seconds``."""
        params = {"filters": json.dumps({"label": labels})}
        if kind == "containers" and all_containers:
            params["all"] = 1
        path = {"containers": "/containers/json", "networks": "/networks", "volumes": "/volumes"}[kind]
        answer = await self._engine("GET", path, params)
        if answer.status != 200:
            raise BackendError(f"the Docker engine could not list {kind}: {answer.message()}")
        found = answer.json() or []
        return (found.get("Volumes") or []) if kind == "volumes" else found

    async def remove_container(self, ref: str) -> None:
        """Kill, then force-remove, each within ``remove_seconds``; gone already is fine.
        Raises :class:`EngineTimeout` for a container the engine will not let go of."""
        kill = await self._engine("POST", f"/containers/{ref}/kill", timeout=self.remove_seconds)
        if kill.status not in (204, 404, 409):  # 409: not running; the removal still goes ahead
            log.info("kill of container %s answered %s: %s", ref[:12], kill.status, kill.message())
        if kill.status == 404:
            return
        answer = await self._engine("DELETE", f"/containers/{ref}", {"force": 1, "v": 1}, timeout=self.remove_seconds)
        if answer.status in (204, 404) or (answer.status == 409 and "already in progress" in answer.message()):
            return
        raise BackendError(f"the Docker engine could not remove it ({answer.status}: {answer.message()})")

    async def _remove(self, path: str, kind: str, name: str, params: dict | None = None) -> str:
        """DELETE one network or volume within ``remove_seconds``; what went wrong, or ``""``."""
        try:
            answer = await self._engine("DELETE", path, params, timeout=self.remove_seconds)
        except EngineTimeout as exc:
            return f"{kind} {name}: {exc}"
        if answer.status in (200, 204, 404):
            return ""
        return f"{kind} {name}: {answer.message()}"

    async def _inspect(self, ref: str) -> dict | None:
        """The container's inspect document, or None when it is gone (on the event loop: a class
        connecting at once must not queue for SDK threads)."""
        answer = await self._engine("GET", f"/containers/{ref}/json")
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise BackendError(f"the Docker engine could not inspect the sandbox: {answer.message()}")
        return answer.json()

    async def _engine(self, method: str, path: str, params: dict | None = None, *, body: dict | None = None,
                      timeout: float | None = None) -> engine_client.EngineAnswer:
        """One engine API call on the event loop within ``timeout`` (``call_seconds``)."""
        try:
            return await engine_client.request(self.docker_host, method, path, params, body=body,
                                               timeout=self.call_seconds if timeout is None else timeout)
        except EngineUnavailable as exc:
            raise EngineUnavailable(engine_down_message(self.docker_host)) from exc

    async def status(self, ref: str) -> EngineState:
        container = await self._inspect(ref)
        if container is None:
            return EngineState.MISSING
        return EngineState.RUNNING if container.get("State", {}).get("Status") == "running" else EngineState.EXITED

    async def exit_code(self, ref: str) -> int | None:
        """How the console's container ended (None while running or when it is gone)."""
        container = await self._inspect(ref)
        if container is None or container.get("State", {}).get("Status") == "running":
            return None
        return container.get("State", {}).get("ExitCode")

    async def open_console(self, ref: str, *, stdin: bool = True, replay: bool = True) -> ConsoleStream:
        params = {"stream": 1, "stdout": 1, "stderr": 1, "stdin": int(stdin), "logs": int(replay)}
        stream = await engine_client.hijack(self.docker_host, f"/containers/{ref}/attach", params)
        return DockerConsole(stream)

    async def resize(self, ref: str, cols: int, rows: int) -> None:
        answer = await self._engine("POST", f"/containers/{ref}/resize", {"h": rows, "w": cols})
        if answer.status == 404:
            raise BackendError("the sandbox is gone")
        if answer.status >= 300:
            # Resizing a container that just exited is harmless; say so rather than crash.
            raise BackendError(f"could not resize the console: {answer.message()}")

    async def run(self, ref: str, script: str, *, timeout: float, max_output: int = 64 * 1024) -> RunResult:
        seconds = max(1, math.ceil(timeout))
        command = ["/bin/sh", "-c", TIMEOUT_GUARD, "tutorial-check", script, str(seconds)]
        exec_id = await self.exec_create(ref, command, user="1000:1000", workdir="/home/learner",
                                         env={"HOME": "/home/learner"})
        stream = await engine_client.hijack(self.docker_host, f"/exec/{exec_id}/start", body={"Detach": False, "Tty": False})
        try:
            # The guard inside kills at the deadline; this outer wait only covers a stuck engine.
            output, truncated = await asyncio.wait_for(engine_client.read_multiplexed(stream, max_output), seconds + 10)
        except asyncio.TimeoutError:
            return RunResult(exit_code=None, output="", timed_out=True)
        finally:
            await stream.close()
        exit_code = await self.exec_exit_code(exec_id)
        text = output.decode("utf-8", errors="replace")
        if TIMEOUT_MARKER in text:
            return RunResult(exit_code=None, output=text.split(TIMEOUT_MARKER)[0].rstrip("\n"), timed_out=True,
                             truncated=truncated)
        return RunResult(exit_code=exit_code, output=text, truncated=truncated)

    async def exec_create(self, ref: str, command: list[str], *, user: str, workdir: str, env: dict[str, str],
                          stdin: bool = False) -> str:
        """Make an exec (not started) in the running sandbox; its id. Within ``call_seconds``."""
        body = {"Cmd": command, "User": user, "WorkingDir": workdir, "Env": [f"{k}={v}" for k, v in env.items()],
                "AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True, "Tty": False}
        answer = await self._engine("POST", f"/containers/{ref}/exec", body=body)
        if answer.status == 404:
            raise BackendError("the sandbox is gone")
        if answer.status != 201:
            raise BackendError(f"could not run the script: {answer.message()}")
        return answer.json()["Id"]

    async def exec_exit_code(self, exec_id: str) -> int | None:
        """How an exec ended (None while it runs). Within ``call_seconds``."""
        answer = await self._engine("GET", f"/exec/{exec_id}/json")
        if answer.status != 200:
            raise BackendError(f"could not read how the script ended: {answer.message()}")
        return (answer.json() or {}).get("ExitCode")

    # -- home files (sandbox.home_files) ------------------------------------------------------------
    async def copy_home_out(self, ref: str, out: BinaryIO) -> int:
        return await docker_home.copy_home_out(self, ref, out)

    async def copy_home_in(self, ref: str, archive: Path) -> None:
        await docker_home.copy_home_in(self, ref, archive)

    async def published_ports(self, sandbox_id: str) -> list[PublishedPort]:
        # Only containers the gateway made for this sandbox (it labels them, and a learner cannot
        # set tutorial.* labels), running, and only on 127.0.0.1 (the gateway allows nothing else).
        containers = await self.labelled("containers", [f"{LABEL_SANDBOX}={sandbox_id}", f"{LABEL_CREATED}={CREATED_VALUE}"],
                                         all_containers=False)
        found = {}
        prefix = Names(sandbox_id).prefix
        for container in containers:
            name = ((container.get("Names") or ["?"])[0]).lstrip("/")
            name = name[len(prefix):] if name.startswith(prefix) else name  # as the learner named it
            for port in container.get("Ports") or []:
                if port.get("Type") == "tcp" and port.get("IP") == "127.0.0.1" and port.get("PublicPort"):
                    host_port = int(port["PublicPort"])
                    found[host_port] = PublishedPort(str(host_port), name, int(port.get("PrivatePort") or 0),
                                                     "127.0.0.1", host_port)
        return [found[p] for p in sorted(found)]

    async def list_owned(self) -> dict[str, str]:
        containers = await self.labelled("containers", [LABEL_SANDBOX, f"{LABEL_ROLE}={ROLE_CONSOLE}",
                                                        f"{LABEL_INSTALL}={settings.INSTALL_ID}"])
        return {c["Labels"][LABEL_SANDBOX]: c["Id"] for c in containers}

    async def ping(self) -> str:
        """The engine's version, or ``EngineUnavailable``."""
        version = await self._call(self.client.version)
        return version.get("Version", "unknown")
