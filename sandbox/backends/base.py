"""The sandbox backend contract.

Modelled on JupyterHub's Spawner: this small base class and its docstrings are the contract; each
engine (Docker, Kubernetes) implements it once. ``sandbox.services`` is the only caller.

Rules every implementation keeps:
- Every call is async and idempotent: calling ``destroy`` twice, or ``create`` for a sandbox that
  already exists, is not an error.
- Every engine object a sandbox owns carries the labels from :func:`sandbox_labels`, so cleanup and
  reconciliation after a restart need no database. The install label (``tutorial.install``) lets
  two installs share one engine: each lists, reconciles and removes only its own objects
  (:func:`belongs_to_install`).
- Every engine call has a deadline: a call that does not answer in time raises
  :class:`EngineTimeout`, never hangs the caller. An object that will not go away (a container
  the engine keeps alive while an attach nobody reads holds its output) makes ``destroy`` raise
  :class:`SandboxStuck` after the others are removed, so the caller reports it and retries later.
- Blocking client libraries run off the event loop (``blocking.run_blocking``: a pool of their
  own); console streams are asyncio all the way.
- Failures the learner or the operator can act on raise :class:`BackendError` with a message that
  says what is wrong and how to fix it.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import logging
from typing import ClassVar, NamedTuple

from django.conf import settings

# The labels and the errors are the engine leaf's; the contract names them, so they are here too.
from ..engine.errors import BackendError, EngineTimeout, EngineUnavailable, SandboxStuck  # noqa: F401
from ..engine.labels import (  # noqa: F401
    LABEL_INSTALL,
    LABEL_LESSON,
    LABEL_OWNER,
    LABEL_ROLE,
    LABEL_SANDBOX,
    LABEL_WORKSPACE,
    ROLE_CONSOLE,
)


log = logging.getLogger(__name__)

def current_install() -> str:
    """This install's id (``settings.INSTALL_ID``), read when a spec is made so tests can change it."""
    return settings.INSTALL_ID


@dataclasses.dataclass(frozen=True)
class Limits:
    memory_bytes: int = 512 * 1024 * 1024
    nano_cpus: int = 1_000_000_000
    pids: int = 256
    nofile: int = 1024
    tmpfs_home_bytes: int = 64 * 1024 * 1024
    tmpfs_tmp_bytes: int = 64 * 1024 * 1024
    log_max_bytes: int = 512 * 1024


@dataclasses.dataclass(frozen=True)
class SandboxSpec:
    """Everything a backend needs to make one sandbox; built by ``services`` from the database."""

    sandbox_id: str  # UUID as a string
    owner_id: int
    owner_name: str
    lesson: str
    workspace: str  # "plain", "docker" or "kubernetes"
    image: str
    limits: Limits = dataclasses.field(default_factory=Limits)
    # Extra capabilities a lesson needs, named in one place (sandbox.backends.manifests).
    capabilities: tuple[str, ...] = ()
    # The install that makes it (its ``tutorial.install`` label).
    install: str = dataclasses.field(default_factory=current_install)


@dataclasses.dataclass(frozen=True)
class RunResult:
    exit_code: int | None  # None when the script was killed at its timeout
    output: str
    timed_out: bool = False
    truncated: bool = False


class EngineState(str, enum.Enum):
    RUNNING = "running"
    EXITED = "exited"
    MISSING = "missing"


def sandbox_labels(spec: SandboxSpec) -> dict[str, str]:
    """The labels every engine object of this sandbox carries."""
    return {
        LABEL_SANDBOX: spec.sandbox_id,
        LABEL_OWNER: str(spec.owner_id),
        LABEL_LESSON: spec.lesson,
        LABEL_WORKSPACE: spec.workspace,
        LABEL_INSTALL: spec.install,
    }


def belongs_to_install(labels: dict | None, install: str, known_ids=frozenset()) -> bool:
    """Whether an engine object with these labels is this install's to reconcile or remove.

    An object labelled with another install is never ours. An object with no install label was
    made before installs were labelled (or by a learner through the gateway, which labels only the
    sandbox): it is ours only when its sandbox id is in ``known_ids`` (a row of this install's
    database), since sandbox ids are UUIDs no two installs share. Anything else is left alone."""
    labels = labels or {}
    owner = labels.get(LABEL_INSTALL)
    if owner:
        return owner == install
    return labels.get(LABEL_SANDBOX, "") in known_ids


class ConsoleStream(abc.ABC):
    """One viewer's attach to a sandbox's TTY.

    Bytes in both directions are raw terminal bytes. ``read`` returns ``b""`` once the console has
    ended (the shell exited or the sandbox went away); after that the stream is finished.
    """

    @abc.abstractmethod
    async def read(self, max_bytes: int = 65536) -> bytes:
        """Wait for and return the next chunk of terminal output; ``b""`` at the end."""

    @abc.abstractmethod
    async def write(self, data: bytes) -> None:
        """Send keystrokes to the TTY. Raises ``BackendError`` if the console has gone."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Detach this viewer only; the sandbox and other viewers carry on. Idempotent."""


class PublishedPort(NamedTuple):
    """A port of the learner's own that the web preview may open: ``name`` (a container or a
    Service) answers on its ``port``; the site reaches it at ``host``:``host_port`` (the machine's
    127.0.0.1 and the published port, or a ready pod's address and its target port). ``key`` names
    it in a preview link."""
    key: str
    name: str
    port: int
    host: str
    host_port: int


class SandboxBackend(abc.ABC):
    """One engine's implementation of the sandbox contract."""

    #: Workspace kinds this backend serves.
    workspaces: ClassVar[tuple[str, ...]] = ()
    #: How long a warm-pool sandbox the engine showed running (its creation, a reaper listing) is
    #: handed out without asking ``status`` again; 0: always ask (sandbox.pool).
    seen_running_trust_seconds: ClassVar[float] = 0.0

    @abc.abstractmethod
    async def create(self, spec: SandboxSpec) -> str:
        """Make everything the sandbox needs and return its engine reference once its console is
        ready to attach. If objects labelled for ``spec.sandbox_id`` already exist, reuse or replace
        them: never leave two. On failure, remove whatever was made, then raise ``BackendError``."""

    @abc.abstractmethod
    async def destroy(self, sandbox_id: str) -> None:
        """Remove everything labelled with this sandbox, including what the learner created in it.
        Succeeds when nothing is left, including when nothing was there."""

    @abc.abstractmethod
    async def status(self, ref: str) -> EngineState:
        """Running, exited or missing, as the engine sees it now."""

    @abc.abstractmethod
    async def open_console(self, ref: str, *, stdin: bool = True, replay: bool = True) -> ConsoleStream:
        """Attach a new viewer to the sandbox's TTY. With ``replay``, the stream starts with the
        recent screen (bounded by the sandbox's log size). With ``stdin=False`` the viewer is
        read-only. Raises ``BackendError`` when the sandbox is not running."""

    @abc.abstractmethod
    async def resize(self, ref: str, cols: int, rows: int) -> None:
        """Set the TTY size. Callers validate 1..1000 before calling."""

    @abc.abstractmethod
    async def run(self, ref: str, script: str, *, timeout: float, max_output: int = 64 * 1024) -> RunResult:
        """Run a shell script inside the sandbox (never in the learner's TTY) and return its exit
        code and combined output, cut at ``max_output`` bytes. A script still running at
        ``timeout`` seconds is killed and reported with ``timed_out=True``."""

    #: Whether the learner's home is kept on stop and put back on the next start (``home_files``).
    #: A backend that says so implements :meth:`copy_home_out` and :meth:`copy_home_in`.
    keeps_home_files: ClassVar[bool] = False

    async def copy_home_out(self, ref: str, out) -> int:
        """Write a gzipped tar of the sandbox's home to the binary file ``out``; the bytes written.
        Raises ``BackendError`` when the copy fails."""
        raise NotImplementedError(f"{type(self).__name__} does not keep home files")

    async def copy_home_in(self, ref: str, archive) -> None:
        """Unpack the gzipped tar at path ``archive`` into the sandbox's home.
        Raises ``BackendError`` when the copy fails."""
        raise NotImplementedError(f"{type(self).__name__} does not keep home files")

    async def published_ports(self, sandbox_id: str) -> list[PublishedPort]:
        """What the learner's own containers or Services serve that the web preview may open.
        Workspaces without any have none."""
        return []

    @abc.abstractmethod
    async def list_owned(self) -> dict[str, str]:
        """Every sandbox of this install the engine holds, as ``{sandbox_id: ref}``, for
        reconciliation (another install's on the same engine are not listed)."""

    # Optional capabilities: a backend overrides what its engine can tell; callers call these
    # directly (never ``getattr``), and the defaults are what a caller may safely assume.

    async def ping(self) -> str:
        """The engine's version, or ``EngineUnavailable`` when it does not answer. The lesson page
        asks before it offers Start. Default: an empty version (no probe)."""
        return ""

    async def exit_code(self, ref: str) -> int | None:
        """How the console ended: its exit code, or None while it runs, once it is gone, or when
        the engine cannot tell (the console then says "The shell exited.")."""
        return None

    async def destroy_orphans(self, sandbox_ids, in_scope=None) -> list[str]:
        """Destroy each of these sandboxes (those ``in_scope`` accepts, when given), one failure
        not stopping the others; the ids removed. What ``reconcile`` does once it knows the orphans."""
        removed = []
        for sandbox_id in sorted(sandbox_ids):
            if in_scope is not None and not in_scope(sandbox_id):
                continue
            try:
                await self.destroy(sandbox_id)
                removed.append(sandbox_id)
            except BackendError as exc:
                log.warning("could not reconcile sandbox %s: %s", sandbox_id, exc)
        return removed

    async def reconcile(self, live_sandbox_ids, in_scope=None) -> list[str]:
        """Remove this install's objects whose sandbox id is not in ``live_sandbox_ids`` (and, with
        ``in_scope``, only those it accepts); return the ids removed. Default: nothing, for a
        backend whose objects the reaper reconciles itself from ``list_owned``."""
        return []
