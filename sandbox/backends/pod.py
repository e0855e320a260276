"""The pod backend for the ``plain`` workspace: each sandbox is one pod on a Kubernetes cluster.

Chosen by ``TUTORIAL_PLAIN_BACKEND=pod`` (``settings.SANDBOX_BACKENDS["plain"]``); the Docker
backend stays the default. Same contract, same console, same checks:

- The pod (built by :func:`k8s_manifests.sandbox_pod_manifest`) runs in one namespace of the
  install (``SANDBOX_POD_NAMESPACE``, default ``tutorial-sandboxes``), which the backend creates
  with Pod Security ``restricted`` and a default-deny NetworkPolicy for the install's sandbox pods.
  A server account that may not create namespaces is told which RBAC it needs.
- The console is the pod's TTY over the attach API (a websocket per viewer, asyncio, no thread per
  keystroke), handed out only once the kubelet has joined it to the TTY; a new viewer first gets
  the pod's recent log (``tailLines`` and ``limitBytes``) as replay. Kubernetes resizes a TTY
  only through a stream (channel 4): a resize goes over the newest viewer's own attach in this
  process (a read-only one's too), else over a control attach of its own.
- Checks and setup run through exec under the Docker backend's guard (their own session, the whole
  process group killed at the deadline, output cut at ``max_output``).
- Home files are kept on stop: ``tar`` through exec out to the server and back in on the next start.

The engine reference is the pod's name. Every API call has a deadline (``k8s_api``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from pathlib import Path
from typing import BinaryIO, ClassVar

from django.conf import settings

from . import k8s_api
from . import k8s_manifests as km
from .base import (
    LABEL_INSTALL,
    LABEL_ROLE,
    LABEL_SANDBOX,
    LABEL_WORKSPACE,
    ROLE_CONSOLE,
    BackendError,
    ConsoleStream,
    EngineState,
    EngineTimeout,
    RunResult,
    SandboxBackend,
    SandboxSpec,
    SandboxStuck,
)
from .docker import TIMEOUT_GUARD, TIMEOUT_MARKER
from .manifests import SANDBOX_HOME

log = logging.getLogger(__name__)

WORKSPACE = "plain"
PROMPT_SECONDS = 10.0
REPLAY_LINES = 1000  # a screen's worth and its scrollback; bytes are capped by the log size too
JOIN_PROOF_TRIES = 3
JOIN_PROOF_SECONDS = 1.0


def _setting(name: str, default):
    return getattr(settings, name, default)


class PodConsole(ConsoleStream):
    """One viewer's attach: the replay first, then the TTY's output."""

    def __init__(self, stream: k8s_api.ChannelStream, replay: bytes, *, stdin: bool, on_close=None):
        self._stream = stream
        self._pending = replay.replace(b"\0", b"")
        self._stdin = stdin
        self._ended = False
        self._on_close = on_close

    async def read(self, max_bytes: int = 65536) -> bytes:
        while not self._pending:
            if self._ended:
                return b""
            message = await self._stream.receive()
            if message is None:
                self._ended = True
                return b""
            channel, payload = message
            if channel in (k8s_api.STDOUT, k8s_api.STDERR):
                # NULs are what _prove_joined writes; a terminal shows nothing for them anyway.
                self._pending = payload.replace(b"\0", b"")
        chunk, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return chunk

    async def write(self, data: bytes) -> None:
        if not self._stdin:
            raise BackendError("this console is read-only")
        await self._stream.send(k8s_api.STDIN, data)

    async def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        await self._stream.close()


class PodBackend(SandboxBackend):
    workspaces = (WORKSPACE,)
    keeps_home_files: ClassVar[bool] = True

    #: A pooled pod listed running within this many seconds is handed out without a status read:
    #: under a class's Starts that read waited on the API server for most of the Start's answer
    #: (0.3 s at the median, 0.7 s at p95, of 30 at once), and the reaper's listing every few
    #: seconds takes out pooled pods that died. A pod that dies inside the window is found by the
    #: learner's console (its attach fails, the sandbox stops with the reason).
    seen_running_trust_seconds: ClassVar[float] = 15.0

    #: Deadlines (seconds). A cold start pulls the image once per node; later starts take seconds.
    create_seconds: float = 90.0
    remove_seconds: float = 30.0
    call_seconds: float = k8s_api.CALL_SECONDS
    #: How long an applied network policy stands before it is built and applied again: what it
    #: allows (the toolboxes' API server addresses) may move while the site runs, and an edited or
    #: deleted policy comes back.
    policy_seconds: float = 30.0

    def __init__(self, api: k8s_api.ClusterAPI | None = None, namespace: str | None = None):
        self.api = api or k8s_api.ClusterAPI(lambda: k8s_api.load_config(
            _setting("KUBERNETES_KUBECONFIG", ""), _setting("KUBERNETES_CONTEXT", "")))
        self.namespace = namespace or _setting("SANDBOX_POD_NAMESPACE", km.SANDBOX_POD_NAMESPACE)
        self._namespace_ready = False
        self._policy_applied_at: float | None = None  # time.monotonic() of the last apply
        self._controls: dict[str, k8s_api.ChannelStream] = {}
        self._control_locks: dict[str, asyncio.Lock] = {}
        self._viewers: dict[str, list[k8s_api.ChannelStream]] = {}  # viewers' attaches (read-only too), oldest first

    # -- paths ------------------------------------------------------------------------------------
    def _pods(self, name: str = "") -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods" + (f"/{name}" if name else "")

    def _install_selector(self, *extra: str) -> str:
        return ",".join((LABEL_SANDBOX, f"{LABEL_ROLE}={ROLE_CONSOLE}", f"{LABEL_INSTALL}={settings.INSTALL_ID}",
                         f"{LABEL_WORKSPACE}={self.workspaces[0]}", *extra))

    def pod_name(self, sandbox_id: str) -> str:
        try:
            return km.sandbox_pod_name(sandbox_id)
        except ValueError as exc:
            raise BackendError(str(exc)) from exc

    # -- what a subclass may change (the Kubernetes lessons' toolbox pods) ------------------------
    def pod_manifest(self, spec: SandboxSpec, image: str) -> dict:
        """The sandbox's pod (``ValueError`` for a spec it cannot be)."""
        return km.sandbox_pod_manifest(spec, namespace=self.namespace, image=image)

    async def namespace_policy(self) -> dict:
        """The NetworkPolicy every pod of the install in the namespace gets: none in, none out."""
        return km.sandbox_pods_deny_policy(self.namespace, install=settings.INSTALL_ID)

    def policy_name(self) -> str:
        """The name of :meth:`namespace_policy`, known without building it."""
        return km.install_policy_name("sandboxes-deny", settings.INSTALL_ID)

    # -- the namespace ----------------------------------------------------------------------------
    async def ensure_namespace(self) -> None:
        """Make the sandboxes' namespace (Pod Security ``restricted``) once per process, and apply
        the install's network policy (again once it is ``policy_seconds`` old); an existing
        namespace is used as it is, its labels brought back. Raises
        :class:`k8s_api.ClusterPermissionError` naming the RBAC the server lacks."""
        if not self._namespace_ready:
            await self._make_namespace()
            self._namespace_ready = True
        await self.apply_namespace_policy()

    async def _make_namespace(self) -> None:
        install = settings.INSTALL_ID
        manifest = km.sandbox_pods_namespace_manifest(
            self.namespace, install=install,
            pod_security_version=_setting("KUBERNETES_POD_SECURITY_VERSION", "v1.31"))
        answer = await self.api.request("GET", f"/api/v1/namespaces/{self.namespace}")
        if answer.status == 404:
            answer = await self.api.request("POST", "/api/v1/namespaces", body=manifest)
            if answer.status == 403:
                raise k8s_api.ClusterPermissionError(
                    f"Namespace {self.namespace} for sandbox pods does not exist and the server's Kubernetes account "
                    f"({self.api.config.source}) may not create it. Create it (labelled "
                    "pod-security.kubernetes.io/enforce=restricted), or grant the account create on namespaces; in it "
                    "the account needs create, get, list, watch, delete on pods, get on pods/log, create and get on "
                    "pods/attach and pods/exec, and create, get, patch on networkpolicies.")
            if answer.status not in (201, 409):
                raise BackendError(f"Could not create namespace {self.namespace}: {answer.message()}")
        elif answer.status == 200:
            labels = (answer.json().get("metadata") or {}).get("labels") or {}
            wanted = {k: v for k, v in manifest["metadata"]["labels"].items() if k.startswith("pod-security.")}
            if any(labels.get(k) != v for k, v in wanted.items()):
                patched = await self.api.request("PATCH", f"/api/v1/namespaces/{self.namespace}",
                                                 body={"metadata": {"labels": wanted}},
                                                 content_type="application/merge-patch+json")
                if patched.status != 200:
                    # A shared namespace the operator manages: say so, but never run without it.
                    raise BackendError(f"Namespace {self.namespace} must enforce Pod Security restricted and could "
                                       f"not be labelled so: {patched.message()}")
        elif answer.status == 403:
            raise self.api.forbidden("get", "namespaces", None, answer)
        else:
            raise BackendError(f"Could not read namespace {self.namespace}: {answer.message()}")

    def _policies(self, name: str = "") -> str:
        return f"/apis/networking.k8s.io/v1/namespaces/{self.namespace}/networkpolicies" + (f"/{name}" if name else "")

    async def apply_namespace_policy(self, *, refresh: bool = False) -> bool:
        """Build the install's network policy afresh and apply it, unless this process did less
        than ``policy_seconds`` ago; True when it was applied. The policy has one name per install
        and namespace, so applying it again replaces it (a merge patch replaces its lists) and never
        adds a second. ``refresh`` (the reaper's pass): a missing policy is made again only when
        pods of the install are in the namespace, so an install that never started one leaves
        nothing there."""
        now = time.monotonic()
        if self._policy_applied_at is not None and now - self._policy_applied_at < self.policy_seconds:
            return False
        policy = await self.namespace_policy()
        answer = await self.api.request("PATCH", self._policies(policy["metadata"]["name"]), body=policy,
                                        content_type="application/merge-patch+json")
        if answer.status == 403:
            raise self.api.forbidden("patch", "networkpolicies", self.namespace, answer)
        if answer.status == 404:
            if refresh and not await self.consoles():
                self._policy_applied_at = now  # nothing to protect: asked again after policy_seconds
                return False
            answer = await self.api.request("POST", self._policies(), body=policy)
            if answer.status == 409:  # another replica made it meanwhile: ours is as new
                answer = await self.api.request("PATCH", self._policies(policy["metadata"]["name"]), body=policy,
                                                content_type="application/merge-patch+json")
            if answer.status == 403:
                raise self.api.forbidden("create", "networkpolicies", self.namespace, answer)
        if answer.status not in (200, 201):
            raise BackendError(f"Could not set the sandboxes' network policy in {self.namespace}: {answer.message()}")
        self._policy_applied_at = now
        return True

    async def remove_namespace_policy(self) -> bool:
        """Delete this install's network policy from the namespace (an install taken down, a test's
        or a benchmark's install finished); True when there was one. Refused with
        :class:`BackendError` while a sandbox pod of the install is there, of any workspace: a pod
        must never run without the policy that guards it."""
        answer = await self.api.request("GET", self._pods(),
                                        {"labelSelector": f"{LABEL_SANDBOX},{LABEL_INSTALL}={settings.INSTALL_ID}"})
        if answer.status == 403:
            raise self.api.forbidden("list", "pods", self.namespace, answer)
        if answer.status not in (200, 404):
            raise BackendError(f"Could not list the sandbox pods in {self.namespace}: {answer.message()}")
        left = [pod["metadata"]["name"] for pod in (answer.json() or {}).get("items") or []] if answer.status == 200 else []
        if left:
            raise BackendError(f"{len(left)} pods of install {settings.INSTALL_ID} are still in {self.namespace} "
                               f"({', '.join(sorted(left)[:3])}): their network policy stays until they are gone.")
        self._policy_applied_at = None
        name = self.policy_name()
        answer = await self.api.request("DELETE", self._policies(name))
        if answer.status == 404:
            return False
        if answer.status == 403:
            raise self.api.forbidden("delete", "networkpolicies", self.namespace, answer)
        if answer.status not in (200, 202):
            raise BackendError(f"Could not remove the network policy {name} from {self.namespace}: {answer.message()}")
        return True

    # -- the contract -----------------------------------------------------------------------------
    async def create(self, spec: SandboxSpec) -> str:
        if spec.workspace not in self.workspaces:
            raise BackendError(f"the pod backend serves the {self.workspaces[0]!r} workspace, not {spec.workspace!r}")
        name = self.pod_name(spec.sandbox_id)
        image = km.pod_image(spec.image, _setting("KUBERNETES_LESSON_REGISTRY", "localhost:5000"))
        try:
            manifest = self.pod_manifest(spec, image)
        except ValueError as exc:
            raise BackendError(str(exc)) from exc
        await self.ensure_namespace()
        existing = await self._read_pod(name)
        if existing is not None:
            if self._is_running(existing) and (existing["metadata"].get("labels") or {}).get(LABEL_SANDBOX) == spec.sandbox_id \
                    and not existing["metadata"].get("deletionTimestamp"):
                return name  # already there and running: reuse, never two
            await self.destroy(spec.sandbox_id)
        try:
            answer = await self.api.request("POST", self._pods(), body=manifest)
            if answer.status == 409:  # a pod of that name is still going away
                await self._wait_gone(spec.sandbox_id)
                answer = await self.api.request("POST", self._pods(), body=manifest)
            if answer.status == 403:
                if "cannot create resource" in answer.message():  # RBAC, not admission (Pod Security, quota)
                    raise self.api.forbidden("create", "pods", self.namespace, answer)
                raise BackendError(f"The cluster refused the sandbox pod: {answer.message()}")
            if answer.status != 201:
                raise BackendError(f"The cluster could not make the sandbox pod: {answer.message()}")
            await self._wait_running(name, (answer.json() or {}).get("metadata", {}).get("resourceVersion", ""))
            await self._wait_for_prompt(name)
        except BaseException:
            await self._clean_up_failed_create(spec.sandbox_id)
            raise
        return name

    async def _clean_up_failed_create(self, sandbox_id: str) -> None:
        try:
            await asyncio.shield(self.destroy(sandbox_id))
        except (BackendError, asyncio.CancelledError) as exc:  # the create's own error is the one to report
            log.warning("could not remove what a failed start of sandbox %s made: %s", sandbox_id, exc)

    async def _read_pod(self, name: str) -> dict | None:
        answer = await self.api.request("GET", self._pods(name))
        if answer.status == 404:
            return None
        if answer.status == 403:
            raise self.api.forbidden("get", "pods", self.namespace, answer)
        if answer.status != 200:
            raise BackendError(f"Could not read pod {name}: {answer.message()}")
        return answer.json()

    @staticmethod
    def _is_running(pod: dict) -> bool:
        status = pod.get("status") or {}
        if status.get("phase") != "Running":
            return False
        containers = status.get("containerStatuses") or []
        return bool(containers) and all((c.get("state") or {}).get("running") is not None for c in containers)

    async def _wait_running(self, name: str, resource_version: str) -> None:
        """Until the pod runs: a watch from the create's version; a pull that fails, a pod that
        ends, or the deadline raise with words a person can act on."""
        params = {"fieldSelector": f"metadata.name={name}"}
        if resource_version:
            params["resourceVersion"] = resource_version
        problems: list[str] = []
        try:
            # aclosing: leaving the loop early must end the watch (and its deadline) at once.
            async with contextlib.aclosing(self.api.watch(self._pods(), params, timeout=self.create_seconds)) as events:
                async for event in events:
                    if event.get("type") == "ERROR":
                        break  # the version is too old: fall back to reading the pod
                    pod = event.get("object") or {}
                    if event.get("type") == "DELETED":
                        raise BackendError("The sandbox pod was deleted while it started.")
                    if self._is_running(pod):
                        return
                    problems = self._starting_problems(pod)
        except EngineTimeout:
            why = f" ({'; '.join(problems)})" if problems else ""
            raise EngineTimeout(f"The sandbox pod did not start within {self.create_seconds:g}s{why}.") from None
        pod = await self._read_pod(name)
        if pod is None or not self._is_running(pod):
            raise BackendError("The sandbox pod did not start.")

    async def _wait_for_prompt(self, name: str) -> None:
        """Until the shell has printed something (its prompt), at most ``PROMPT_SECONDS``.

        The replay is the pod's log read just before the attach: unlike Docker's attach with
        logs, the two are not one call. A viewer attaching to a shell that had not yet printed its
        prompt would find the prompt in neither and face a blank console.

        One followed read of the log's first byte, answered when the shell writes it: polling
        the log every few milliseconds cost the API server and the kubelet a request each time,
        for every pod of a class starting at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROMPT_SECONDS
        while (left := deadline - loop.time()) > 0:
            try:
                answer = await self.api.request("GET", self._pods(name) + "/log", {
                    "container": km.SANDBOX_CONTAINER, "limitBytes": "1", "follow": "true"}, timeout=left)
            except EngineTimeout:
                break
            if answer.status == 200 and answer.body:
                return
            await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))  # not readable yet (400): again
        log.warning("sandbox pod %s printed no prompt within %gs", name, PROMPT_SECONDS)

    @staticmethod
    def _starting_problems(pod: dict) -> list[str]:
        """What keeps a starting pod back; raises when it will never start (its image cannot be
        pulled, it ended), so the learner is told at once instead of at the deadline."""
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Failed", "Succeeded"):
            raise BackendError(f"The sandbox pod ended as it started ({phase}): "
                               f"{(pod.get('status') or {}).get('message') or 'its shell exited'}")
        problems = km.explain_pod(pod)
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                problems.append(f"no node can take it yet: {condition.get('message') or condition.get('reason')}")
        if any("cannot pull" in p or "invalid image" in p or "configuration" in p for p in problems):
            raise BackendError("The sandbox could not start: " + "; ".join(problems) + ". Push the lesson images "
                               "to the classroom registry (`.venv/bin/python manage.py seed_registry`).")
        return problems

    async def destroy(self, sandbox_id: str) -> None:
        """Delete every pod labelled for the sandbox and wait until they are gone, within
        ``remove_seconds``. One second of grace, not zero: a pod deleted with none leaves the API at
        once while its containers may still run on the node; with one, the pod is gone from the
        API only once the kubelet has stopped them. (The home is saved before, so nothing is lost.)"""
        name = self.pod_name(sandbox_id)
        self._control_locks.pop(name, None)
        self._viewers.pop(name, None)
        control = self._controls.pop(name, None)
        if control is not None:
            await control.close()
        selector = f"{LABEL_SANDBOX}={sandbox_id}"
        answer = await self.api.request("DELETE", self._pods(), {"labelSelector": selector, "gracePeriodSeconds": "1"},
                                        timeout=self.remove_seconds)
        if answer.status == 403:
            raise self.api.forbidden("delete", "pods", self.namespace, answer)
        if answer.status not in (200, 404):
            raise BackendError(f"Could not remove the sandbox pod: {answer.message()}")
        await self._wait_gone(sandbox_id)

    async def _wait_gone(self, sandbox_id: str) -> None:
        deadline = asyncio.get_running_loop().time() + self.remove_seconds
        while True:
            answer = await self.api.request("GET", self._pods(), {"labelSelector": f"{LABEL_SANDBOX}={sandbox_id}"})
            if answer.status == 200 and not (answer.json() or {}).get("items"):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise SandboxStuck(f"The sandbox pod of {sandbox_id} is still being removed after "
                                   f"{self.remove_seconds:g}s; it is tried again later.")
            await asyncio.sleep(0.2)

    async def status(self, ref: str) -> EngineState:
        pod = await self._read_pod(ref)
        if pod is None:
            return EngineState.MISSING
        if pod["metadata"].get("deletionTimestamp"):
            return EngineState.EXITED
        return EngineState.RUNNING if self._is_running(pod) else EngineState.EXITED

    async def exit_code(self, ref: str) -> int | None:
        """How the console's shell ended (None while it runs, or when the pod is gone)."""
        pod = await self._read_pod(ref)
        if pod is None:
            return None
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated is not None:
                return terminated.get("exitCode")
        return None

    async def open_console(self, ref: str, *, stdin: bool = True, replay: bool = True) -> ConsoleStream:
        # The attach is returned only once it is joined to the TTY (``_open_joined``): the API
        # server answers its websocket before the kubelet has joined it, and output in between
        # never reaches it, so a viewer opened just before someone typed saw neither the command
        # nor its answer. The replay is read meanwhile, one round trip instead of two on the way
        # to a learner's prompt; a line printed between that read and the join is in neither.
        opening = asyncio.ensure_future(self._open_joined(ref, stdin))
        try:
            recent = await self._recent_output(ref) if replay else b""
        except BaseException:
            opening.cancel()
            with contextlib.suppress(BaseException):
                await (await opening).close()
            raise
        stream = await opening
        # The log holds whole lines only: the prompt line comes back when a resize made for this
        # viewer (a typing viewer's first, or the redraw the console makes for a read-only one)
        # makes the shell redraw it, and that resize travels on this attach (``resize``). A
        # read-only attach carries resizes too: the TTY's size is no input.
        self._viewers.setdefault(ref, []).append(stream)
        return PodConsole(stream, recent, stdin=stdin, on_close=lambda: self._forget_viewer(ref, stream))

    async def _open_joined(self, ref: str, stdin: bool) -> k8s_api.ChannelStream:
        """The attach, once joined to the TTY: the server's streams to the kubelet are there
        (``wait_joined``), and for a read-only viewer its first output has come (``_prove_joined``)."""
        stream = await self.api.stream(self._pods(ref) + "/attach", [
            ("container", km.SANDBOX_CONTAINER), ("stdin", str(stdin).lower()), ("stdout", "true"),
            ("stderr", "false"), ("tty", "true")])
        try:
            await stream.wait_joined(self.call_seconds)
            if not stdin and not stream.output_seen:
                await self._prove_joined(ref, stream)
        except BaseException:
            await stream.close()
            raise
        return stream

    async def _prove_joined(self, ref: str, stream: k8s_api.ChannelStream) -> None:
        """Make sure a read-only viewer's attach is joined: write one NUL to the TTY (terminals
        ignore it; :class:`PodConsole` drops it) until the attach sees output.

        The server's order of reading (``wait_joined``) says when the kubelet's streams exist,
        but the runtime joins the attach to the TTY a moment later (it first looks the
        container's task up), and under load output in that moment was still lost (1 viewer in
        200 opened while another typed). A typing viewer's own first resize makes the shell
        redraw over its own attach, which proves it the same way; a read-only viewer sends none.
        Best effort: a TTY whose output is held (Ctrl-S) never shows the NUL, so after
        ``JOIN_PROOF_TRIES`` the viewer is returned as it is."""
        for _ in range(JOIN_PROOF_TRIES):
            try:
                nudge = await self._exec(ref, ["/bin/sh", "-c", f"printf '\\0' >{km.CONSOLE_TTY}"])
                try:
                    async with asyncio.timeout(JOIN_PROOF_SECONDS):
                        while await nudge.receive() is not None:
                            pass
                finally:
                    await nudge.close()
            except (BackendError, TimeoutError) as exc:
                log.info("could not nudge the console of %s to prove a new viewer joined: %s", ref, exc)
                return
            if await stream.wait_output(JOIN_PROOF_SECONDS):
                return

    async def _recent_output(self, ref: str) -> bytes:
        """The pod's recent log, what a new viewer is shown first (whole lines only)."""
        answer = await self.api.request("GET", self._pods(ref) + "/log", {
            "container": km.SANDBOX_CONTAINER, "tailLines": str(REPLAY_LINES),
            "limitBytes": str(settings.SANDBOX_LIMITS.get("log_max_bytes", 512 * 1024))})
        if answer.status == 404:
            raise BackendError("the sandbox is gone")
        if answer.status == 403:
            raise self.api.forbidden("get", "pods/log", self.namespace, answer)
        # 400: the container is not running (yet, or any more); the attach says which.
        return answer.body if answer.status == 200 else b""

    def _forget_viewer(self, ref: str, stream: k8s_api.ChannelStream) -> None:
        viewers = [v for v in self._viewers.get(ref, ()) if v is not stream and not v.socket.closed]
        if viewers:
            self._viewers[ref] = viewers
        else:
            self._viewers.pop(ref, None)

    async def resize(self, ref: str, cols: int, rows: int) -> None:
        """Resize the TTY over the newest viewer's attach, else over the control attach.

        A viewer's own attach, because the runtime joins an attach to the TTY a moment after the
        kubelet has its streams (``open_console`` waits for those), and output in between never
        reaches it: a resize sent on another, older attach made the shell redraw its prompt
        before the new viewer was joined, and under load that viewer saw no prompt at all. Sent
        on its own attach, the resize (and so the redraw) comes only once that attach is joined.
        One stream at a time, under a lock per sandbox, so a quick pair of sizes is applied in order."""
        lock = self._control_locks.setdefault(ref, asyncio.Lock())
        async with lock:
            for viewer in reversed(self._viewers.get(ref, ())):
                if viewer.socket.closed:
                    continue
                try:
                    await viewer.resize(cols, rows)
                    return
                except BackendError:
                    continue  # that viewer has just gone: the next one, or the control attach
            for attempt in (1, 2):
                control = self._controls.get(ref)
                if control is None or control.socket.closed:
                    # stdin only: this attach never reads output, so it never holds the TTY back.
                    control = await self.api.stream(self._pods(ref) + "/attach", [
                        ("container", km.SANDBOX_CONTAINER), ("stdin", "true"), ("stdout", "false"),
                        ("stderr", "false"), ("tty", "true")])
                    self._controls[ref] = control
                    # Read it, so pings are answered and its end (the pod gone) is noticed.
                    asyncio.get_running_loop().create_task(self._drain_control(ref, control))
                try:
                    await control.resize(cols, rows)
                    return
                except BackendError:
                    self._controls.pop(ref, None)
                    await control.close()
                    if attempt == 2:
                        raise

    async def _drain_control(self, ref: str, control: k8s_api.ChannelStream) -> None:
        while await control.receive() is not None:
            pass
        if self._controls.get(ref) is control:
            del self._controls[ref]
        await control.close()

    async def _exec(self, ref: str, command: list[str], *, stdin: bool = False) -> k8s_api.ChannelStream:
        params = [("container", km.SANDBOX_CONTAINER), ("stdout", "true"), ("stderr", "true"),
                  ("stdin", str(stdin).lower()), ("tty", "false")]
        params += [("command", part) for part in command]
        return await self.api.stream(self._pods(ref) + "/exec", params)

    async def run(self, ref: str, script: str, *, timeout: float, max_output: int = 64 * 1024) -> RunResult:
        seconds = max(1, math.ceil(timeout))
        stream = await self._exec(ref, ["/bin/sh", "-c", f'cd "$HOME" 2>/dev/null; {TIMEOUT_GUARD}',
                                        "tutorial-check", script, str(seconds)])
        output = bytearray()
        truncated = False

        async def collect():
            nonlocal truncated
            while (message := await stream.receive()) is not None:
                channel, payload = message
                if channel not in (k8s_api.STDOUT, k8s_api.STDERR):
                    continue
                room = max_output - len(output)
                if len(payload) > room:
                    truncated = True
                output.extend(payload[:room])  # keep reading to the end: the status comes last

        try:
            # The guard inside kills at the deadline; this outer wait only covers a stuck cluster.
            await asyncio.wait_for(collect(), seconds + 10)
        except asyncio.TimeoutError:
            return RunResult(exit_code=None, output=output.decode("utf-8", errors="replace"), timed_out=True,
                             truncated=truncated)
        finally:
            await stream.close()
        text = output.decode("utf-8", errors="replace")
        if stream.status is None:
            raise BackendError("the check's connection to the sandbox was cut before it ended")
        if TIMEOUT_MARKER in text:
            return RunResult(exit_code=None, output=text.split(TIMEOUT_MARKER)[0].rstrip("\n"), timed_out=True,
                             truncated=truncated)
        exit_code = stream.exit_code()
        if exit_code is None:
            # The script never ran (the runtime could not start it): no exit code, and the API's
            # words are the only account of why.
            raise BackendError(f"The sandbox could not run the script: {stream.status.get('message') or stream.status}")
        return RunResult(exit_code=exit_code, output=text, truncated=truncated)

    async def list_owned(self) -> dict[str, str]:
        return {sandbox_id: console["ref"] for sandbox_id, console in (await self.consoles()).items()}

    async def consoles(self) -> dict[str, dict]:
        """This install's sandbox pods: ``{sandbox_id: {"ref": pod name, "running": bool}}``."""
        answer = await self.api.request("GET", self._pods(), {"labelSelector": self._install_selector()})
        if answer.status == 404:
            return {}
        if answer.status == 403:
            raise self.api.forbidden("list", "pods", self.namespace, answer)
        if answer.status != 200:
            raise BackendError(f"Could not list the sandbox pods: {answer.message()}")
        found = {}
        for pod in (answer.json() or {}).get("items") or []:
            labels = pod["metadata"].get("labels") or {}
            found[labels[LABEL_SANDBOX]] = {"ref": pod["metadata"]["name"],
                                            "running": self._is_running(pod) and not pod["metadata"].get("deletionTimestamp")}
        return found

    async def reconcile(self, live_sandbox_ids, in_scope=None) -> list[str]:
        """Remove every sandbox pod of this install whose id is not in ``live_sandbox_ids`` (and is
        ``in_scope``, when given); the ids removed. One failure does not stop the others."""
        live = {str(sandbox_id) for sandbox_id in live_sandbox_ids}
        return await self.destroy_orphans(set(await self.consoles()) - live, in_scope)

    async def ping(self) -> str:
        """The cluster's version, or a clear error."""
        answer = await self.api.request("GET", "/version")
        if answer.status != 200:
            raise BackendError(f"The Kubernetes API answered {answer.status}: {answer.message()}")
        return (answer.json() or {}).get("gitVersion", "unknown")

    # -- home files (sandbox.home_files) ------------------------------------------------------------
    async def copy_home_out(self, ref: str, out: BinaryIO) -> int:
        """Write a gzipped tar of the home to ``out``; the bytes written. ``BackendError`` when tar fails."""
        stream = await self._exec(ref, ["tar", "-czf", "-", "-C", SANDBOX_HOME, "."])
        written = 0
        try:
            while (message := await stream.receive()) is not None:
                channel, payload = message
                if channel == k8s_api.STDOUT:
                    out.write(payload)
                    written += len(payload)
                elif channel == k8s_api.STDERR:
                    log.info("tar while saving files: %s", payload[:200].decode(errors="replace"))
        finally:
            await stream.close()
        code = stream.exit_code()
        if code != 0:
            raise BackendError(f"tar ended with code {code}" if code is not None else "the copy of the files was cut off")
        return written

    async def copy_home_in(self, ref: str, archive: Path) -> None:
        """Unpack a gzipped tar into the home. The exact size is sent first (``head -c``), so the
        copy ends without closing stdin, which the older stream protocol cannot do."""
        size = archive.stat().st_size
        stream = await self._exec(ref, ["/bin/sh", "-c", f'head -c {size} | tar -xzf - -C {SANDBOX_HOME}'], stdin=True)
        try:
            with open(archive, "rb") as source:
                while chunk := source.read(256 * 1024):
                    await stream.send(k8s_api.STDIN, chunk)
            while await stream.receive() is not None:  # tar's output, read to its end
                pass
        finally:
            await stream.close()
        code = stream.exit_code()
        if code != 0:
            raise BackendError(f"tar ended with code {code}" if code is not None else "the copy of the files was cut off")

