"""The Docker engine backend for ``plain`` and ``docker`` workspaces.

Management calls use the docker SDK off the event loop; console and check streams use asyncio on
the engine's hijacked sockets (``engine_socket``).
"""

from __future__ import annotations

import asyncio
import functools
import math
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
from django.conf import settings

from . import engine_socket
from .base import (
    LABEL_ROLE,
    LABEL_SANDBOX,
    ROLE_CONSOLE,
    BackendError,
    ConsoleStream,
    EngineState,
    EngineUnavailable,
    RunResult,
    SandboxBackend,
    SandboxSpec,
)
from .manifests import sandbox_container_config

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


def engine_unavailable_message(docker_host: str, exc: Exception | None = None) -> str:
    detail = f" ({exc})" if exc else ""
    return (
        f"The Docker engine does not answer at {docker_host}{detail}. "
        "Install it (apt-get install docker.io), start it (scripts/start-dockerd.sh) and try again."
    )


class DockerConsole(ConsoleStream):
    def __init__(self, stream: engine_socket.HijackedStream):
        self._stream = stream

    async def read(self, max_bytes: int = 65536) -> bytes:
        return await self._stream.read(max_bytes)

    async def write(self, data: bytes) -> None:
        await self._stream.write(data)

    async def close(self) -> None:
        await self._stream.close()


class DockerBackend(SandboxBackend):
    workspaces = ("plain", "docker")

    def __init__(self, docker_host: str | None = None):
        self.docker_host = docker_host or settings.DOCKER_HOST
        self._client: docker.DockerClient | None = None

    # -- helpers --------------------------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            # A fixed API version: no version probe at construction, so "engine down" surfaces
            # inside _call as one clear error. 1.41 is Debian 12's engine; newer engines accept it.
            self._client = docker.DockerClient(base_url=self.docker_host, version=engine_socket.API_VERSION[1:], timeout=60)
        return self._client

    async def _call(self, func, *args, **kwargs):
        """Run a blocking SDK call in a thread, translating 'engine down' into one clear error."""
        try:
            return await asyncio.to_thread(functools.partial(func, *args, **kwargs))
        except (requests.exceptions.ConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
            self._client = None
            raise EngineUnavailable(engine_unavailable_message(self.docker_host)) from exc
        except docker.errors.DockerException as exc:
            if "Error while fetching server API version" in str(exc):
                self._client = None
                raise EngineUnavailable(engine_unavailable_message(self.docker_host)) from exc
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
            container = await self._call(self.client.containers.create, **config)
            await self._call(container.start)
            if spec.workspace == "docker":
                # The learner's `docker` answers within the start: in-process unless run_gateway runs.
                from sandbox.gateway.server import ensure_gateway

                await ensure_gateway(spec.sandbox_id, spec.owner_id, spec.lesson)
        except docker.errors.ImageNotFound as exc:
            await self.destroy(spec.sandbox_id)
            raise BackendError(
                f"The sandbox image {spec.image} is not built. Run `.venv/bin/python manage.py build_images`."
            ) from exc
        except docker.errors.APIError as exc:
            await self.destroy(spec.sandbox_id)
            raise BackendError(f"The Docker engine could not start the sandbox: {exc.explanation or exc}") from exc
        return container.id

    async def destroy(self, sandbox_id: str) -> None:
        label = f"{LABEL_SANDBOX}={sandbox_id}"

        def remove_all():
            # Low-level listings: the high-level ones re-fetch each object and race with a
            # concurrent destroy (the console ending while Stop is pressed).
            api = self.client.api
            for container in api.containers(all=True, filters={"label": label}):
                try:
                    api.remove_container(container["Id"], force=True, v=True)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    if "already in progress" not in str(exc):
                        raise
            for network in api.networks(filters={"label": label}):
                try:
                    api.remove_network(network["Id"])
                except docker.errors.NotFound:
                    pass
            for volume in (api.volumes(filters={"label": label}) or {}).get("Volumes") or []:
                try:
                    api.remove_volume(volume["Name"], force=True)
                except docker.errors.NotFound:
                    pass

        await self._call(remove_all)
        # What the learner made through the docker gateway: built images, tags, registry repositories.
        from sandbox.gateway.cleanup import destroy_learner_objects
        from sandbox.gateway.server import release_gateway

        await release_gateway(sandbox_id)
        await self._call(destroy_learner_objects, sandbox_id, docker_host=self.docker_host)

    async def _inspect(self, ref: str) -> dict | None:
        """The container's inspect document, or None when it is gone (on the event loop: a class
        connecting at once must not queue for SDK threads)."""
        answer = await self._engine("GET", f"/containers/{ref}/json")
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise BackendError(f"the Docker engine could not inspect the sandbox: {answer.message()}")
        return answer.json()

    async def _engine(self, method: str, path: str, params: dict | None = None) -> engine_socket.EngineAnswer:
        try:
            return await engine_socket.request(self.docker_host, method, path, params)
        except EngineUnavailable as exc:
            raise EngineUnavailable(engine_unavailable_message(self.docker_host)) from exc

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
        stream = await engine_socket.hijack(self.docker_host, f"/containers/{ref}/attach", params)
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
        try:
            exec_id = (await self._call(self.client.api.exec_create, ref, command, user="1000:1000",
                                        workdir="/home/learner", environment={"HOME": "/home/learner"}))["Id"]
        except docker.errors.NotFound as exc:
            raise BackendError("the sandbox is gone") from exc
        except docker.errors.APIError as exc:
            raise BackendError(f"could not run the script: {exc.explanation or exc}") from exc
        stream = await engine_socket.hijack(self.docker_host, f"/exec/{exec_id}/start", body={"Detach": False, "Tty": False})
        try:
            # The guard inside kills at the deadline; this outer wait only covers a stuck engine.
            output, truncated = await asyncio.wait_for(engine_socket.read_multiplexed(stream, max_output), seconds + 10)
        except asyncio.TimeoutError:
            return RunResult(exit_code=None, output="", timed_out=True)
        finally:
            await stream.close()
        info = await self._call(self.client.api.exec_inspect, exec_id)
        text = output.decode("utf-8", errors="replace")
        if TIMEOUT_MARKER in text:
            return RunResult(exit_code=None, output=text.split(TIMEOUT_MARKER)[0].rstrip("\n"), timed_out=True,
                             truncated=truncated)
        return RunResult(exit_code=info.get("ExitCode"), output=text, truncated=truncated)

    async def list_owned(self) -> dict[str, str]:
        filters = {"label": [LABEL_SANDBOX, f"{LABEL_ROLE}={ROLE_CONSOLE}"]}
        containers = await self._call(self.client.api.containers, all=True, filters=filters)
        return {c["Labels"][LABEL_SANDBOX]: c["Id"] for c in containers}

    async def ping(self) -> str:
        """The engine's version, or ``EngineUnavailable``."""
        version = await self._call(self.client.version)
        return version.get("Version", "unknown")
