"""A fake sandbox backend and console, in memory, for fast tests of what sits above the engine:
views, permissions, the lifecycle verbs' database work. Like JupyterHub's mocking module, it keeps
the contract (``sandbox.backends.base``) and nothing else; every part that talks to an engine is
also tested against the real one (tests/integration, tests/kubernetes).

Use the ``fake_backend`` fixture (tests/conftest.py): every workspace is served by one
:class:`FakeBackend`, whose ``sandboxes`` show what was made and whose ``scripts`` answer ``run``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections.abc import Callable

from ops.pod_cluster import POD_NAMESPACE_RIGHTS
from sandbox.backends import k8s_api
from sandbox.backends.base import (
    BackendError,
    ConsoleStream,
    EngineState,
    RunResult,
    SandboxBackend,
    SandboxSpec,
)


@dataclasses.dataclass
class FakeSandbox:
    spec: SandboxSpec
    ref: str
    state: EngineState = EngineState.RUNNING
    size: tuple[int, int] = (80, 24)
    sizes: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # every size change, in order
    screen: bytearray = dataclasses.field(default_factory=bytearray)
    viewers: list[FakeConsole] = dataclasses.field(default_factory=list)
    scripts_run: list[str] = dataclasses.field(default_factory=list)
    home: bytes = b""  # what ``HomeKeepingBackend`` copies out and in as the home's archive


class FakeConsole(ConsoleStream):
    """A TTY that echoes what is typed to every viewer, as a shell's terminal does. As the
    engine's, its replay holds whole lines only: the line being typed (an idle shell's prompt)
    comes back to a new viewer only when a size change makes the shell redraw it."""

    def __init__(self, sandbox: FakeSandbox, *, stdin: bool, replay: bool):
        self.sandbox = sandbox
        self.stdin = stdin
        self.output: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = False
        whole_lines = bytes(sandbox.screen[:sandbox.screen.rfind(b"\n") + 1])
        if replay and whole_lines:
            self.output.put_nowait(whole_lines)

    async def read(self, max_bytes: int = 65536) -> bytes:
        if self.closed:
            return b""
        return (await self.output.get())[:max_bytes]

    async def write(self, data: bytes) -> None:
        if self.closed or self.sandbox.state is not EngineState.RUNNING:
            raise BackendError("the console has closed")
        if not self.stdin:
            raise BackendError("this console is read-only")
        self.sandbox.screen += data
        for viewer in self.sandbox.viewers:
            viewer.output.put_nowait(data)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.output.put_nowait(b"")
            if self in self.sandbox.viewers:
                self.sandbox.viewers.remove(self)


def _exit_zero(script: str) -> RunResult:
    return RunResult(exit_code=0, output="")


class FakeBackend(SandboxBackend):
    """Every workspace, in memory. Class attributes are shared by every instance the site makes
    (``get_backend`` makes one per workspace); the fixture resets them for each test."""

    workspaces = ("plain", "docker", "kubernetes")
    sandboxes: dict[str, FakeSandbox] = {}
    # Answers ``run``: a script's text -> its result (the default: exit 0, no output).
    scripts: Callable[[str], RunResult] = staticmethod(_exit_zero)
    # Set to a BackendError to make every call fail as an engine that is down would.
    failure: BackendError | None = None
    _refs = itertools.count(1)

    @classmethod
    def reset(cls) -> None:
        cls.sandboxes = {}
        cls.scripts = staticmethod(_exit_zero)
        cls.failure = None

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _by_ref(self, ref: str) -> FakeSandbox | None:
        return next((s for s in self.sandboxes.values() if s.ref == ref), None)

    async def create(self, spec: SandboxSpec) -> str:
        self._check()
        existing = self.sandboxes.get(spec.sandbox_id)
        if existing is not None and existing.state is EngineState.RUNNING:
            return existing.ref
        sandbox = FakeSandbox(spec=spec, ref=f"fake-{next(self._refs)}")
        self.sandboxes[spec.sandbox_id] = sandbox
        return sandbox.ref

    async def destroy(self, sandbox_id: str) -> None:
        self._check()
        sandbox = self.sandboxes.pop(sandbox_id, None)
        if sandbox is not None:
            sandbox.state = EngineState.MISSING
            for viewer in list(sandbox.viewers):
                await viewer.close()

    async def status(self, ref: str) -> EngineState:
        self._check()
        sandbox = self._by_ref(ref)
        return sandbox.state if sandbox is not None else EngineState.MISSING

    async def open_console(self, ref: str, *, stdin: bool = True, replay: bool = True) -> ConsoleStream:
        self._check()
        sandbox = self._by_ref(ref)
        if sandbox is None or sandbox.state is not EngineState.RUNNING:
            raise BackendError("the sandbox is not running")
        console = FakeConsole(sandbox, stdin=stdin, replay=replay)
        sandbox.viewers.append(console)
        return console

    async def resize(self, ref: str, cols: int, rows: int) -> None:
        """A size change redraws the current line on every viewer, as a shell does on SIGWINCH."""
        self._check()
        sandbox = self._by_ref(ref)
        if sandbox is not None and sandbox.size != (cols, rows):
            sandbox.size = (cols, rows)
            sandbox.sizes.append((cols, rows))
            line = bytes(sandbox.screen[sandbox.screen.rfind(b"\n") + 1:])
            for viewer in sandbox.viewers if line else ():
                viewer.output.put_nowait(b"\r" + line)

    async def run(self, ref: str, script: str, *, timeout: float, max_output: int = 64 * 1024) -> RunResult:
        self._check()
        sandbox = self._by_ref(ref)
        if sandbox is None or sandbox.state is not EngineState.RUNNING:
            raise BackendError("the sandbox is not running")
        sandbox.scripts_run.append(script)
        result = type(self).scripts(script)
        if len(result.output.encode()) > max_output:
            return dataclasses.replace(result, output=result.output.encode()[:max_output].decode(errors="ignore"),
                                       truncated=True)
        return result

    async def list_owned(self) -> dict[str, str]:
        self._check()
        return {sandbox_id: s.ref for sandbox_id, s in self.sandboxes.items()}

    async def ping(self) -> str:
        self._check()
        return "fake"

    # What a test does to a sandbox from outside, as the engine or a learner's shell would.

    @classmethod
    def end_shell(cls, sandbox_id: str, exit_code: int = 0) -> None:
        """The shell exits: the console's viewers see the end, the sandbox is no longer running."""
        sandbox = cls.sandboxes[sandbox_id]
        sandbox.state = EngineState.EXITED
        for viewer in list(sandbox.viewers):
            viewer.output.put_nowait(b"")


class HomeKeepingBackend(FakeBackend):
    """A :class:`FakeBackend` that keeps the learner's home on stop (``keeps_home_files``): a
    sandbox's ``home`` bytes are its archive. ``home_failure`` (a BackendError) makes every copy
    fail as a tar that ends badly would."""

    keeps_home_files = True

    def __init__(self, home_failure: BackendError | None = None):
        self.home_failure = home_failure

    def _home_of(self, ref: str) -> FakeSandbox:
        self._check()
        sandbox = self._by_ref(ref)
        if sandbox is None or sandbox.state is not EngineState.RUNNING:
            raise BackendError("the sandbox is not running")
        if self.home_failure is not None:
            raise self.home_failure
        return sandbox

    async def copy_home_out(self, ref: str, out) -> int:
        home = self._home_of(ref).home
        out.write(home)
        return len(home)

    async def copy_home_in(self, ref: str, archive) -> None:
        self._home_of(ref).home = archive.read_bytes()


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch, as the API server applies ``application/merge-patch+json``:
    objects merge, lists and values are replaced, null removes."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


class FakeClusterAPI:
    """A Kubernetes API answering the doctor's questions from a dict: the namespaces that exist
    (name -> labels) and the rights the account holds, as ``(namespace, verb, resource/sub)``;
    ``"create namespaces"`` stands for the cluster-wide right to make namespaces. It also keeps
    NetworkPolicies (``network_policies``: ``{(namespace, name): object}``, made, patched, listed
    and deleted as the API server does) and lists ``pods`` (objects, in any namespace);
    ``endpoint_slices`` may be changed between calls, as a moved API server changes them."""

    def __init__(self, namespaces: dict[str, dict] | None = None, rights: set | None = None, version: str = "v1.35.4",
                 *, host: str = "https://10.96.0.1:443", endpoint_slices: list[dict] | None = None):
        self.config = k8s_api.ClusterConfig(host, False, None, "fake")
        self.endpoint_slices = endpoint_slices  # None: listing them is forbidden
        self.namespaces = namespaces or {}
        self.rights = rights if rights is not None else set()
        self.version = version
        self.created: list[dict] = []
        self.network_policies: dict[tuple[str, str], dict] = {}
        self.pods: list[dict] = []

    @staticmethod
    def _json(status: int, data) -> k8s_api.Answer:
        return k8s_api.Answer(status, json.dumps(data).encode())

    def _network_policy(self, method: str, path: str, body):
        parts = path.split("/")  # /apis/networking.k8s.io/v1/namespaces/<ns>/networkpolicies[/<name>]
        namespace, name = parts[5], (parts[7] if len(parts) > 7 else "")
        key = (namespace, name)
        if method == "GET" and not name:
            return self._json(200, {"items": [policy for (ns, _), policy in sorted(self.network_policies.items())
                                              if ns == namespace]})
        if method == "POST" and not name:
            key = (namespace, body["metadata"]["name"])
            if key in self.network_policies:
                return self._json(409, {"message": f'networkpolicies "{key[1]}" already exists'})
            self.network_policies[key] = body
            return self._json(201, body)
        if key not in self.network_policies:
            return self._json(404, {"message": f'networkpolicies "{name}" not found'})
        if method == "PATCH":
            self.network_policies[key] = merge_patch(self.network_policies[key], body)
            return self._json(200, self.network_policies[key])
        if method == "DELETE":
            return self._json(200, self.network_policies.pop(key))
        return self._json(200, self.network_policies[key])

    async def request(self, method: str, path: str, params=None, *, body=None, **_ignored):
        if path == "/version":
            return self._json(200, {"gitVersion": self.version})
        if "/networkpolicies" in path and path.startswith("/apis/networking.k8s.io/v1/namespaces/"):
            return self._network_policy(method, path, body)
        if method == "GET" and path.startswith("/api/v1/namespaces/") and path.endswith("/pods"):
            namespace = path.split("/")[4]
            wanted = dict(item.partition("=")[::2] for item in (params or {}).get("labelSelector", "").split(",") if item)
            items = [pod for pod in self.pods if pod["metadata"].get("namespace") == namespace
                     and all(key in (pod["metadata"].get("labels") or {}) and (not value or pod["metadata"]["labels"][key] == value)
                             for key, value in wanted.items())]
            return self._json(200, {"items": items})
        if method == "GET" and path.startswith("/api/v1/namespaces/"):
            name = path.rsplit("/", 1)[-1]
            if name in self.namespaces:
                return self._json(200, {"metadata": {"name": name, "labels": self.namespaces[name]}})
            return self._json(404, {"message": f'namespaces "{name}" not found'})
        if method == "GET" and path.endswith("/namespaces/default/endpointslices"):
            if self.endpoint_slices is None:
                return self._json(403, {"message": "endpointslices is forbidden"})
            return self._json(200, {"items": self.endpoint_slices})
        if method == "POST" and path.endswith("/selfsubjectaccessreviews"):
            attributes = body["spec"]["resourceAttributes"]
            resource = attributes["resource"] + (f"/{attributes['subresource']}" if attributes.get("subresource") else "")
            if "namespace" not in attributes:
                allowed = f"{attributes['verb']} {resource}" in self.rights
            else:
                allowed = (attributes["namespace"], attributes["verb"], resource) in self.rights
            return self._json(201, {"status": {"allowed": allowed}})
        self.created.append({"method": method, "path": path, "body": body})
        return self._json(404, {"message": "not served by the fake"})


def every_pod_right(namespace: str) -> set:
    """All the rights the pod backend uses in ``namespace`` (for FakeClusterAPI)."""
    return {(namespace, verb, resource + (f"/{sub}" if sub else "")) for verb, resource, sub in POD_NAMESPACE_RIGHTS}
