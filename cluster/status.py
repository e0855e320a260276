"""How far the local cluster is, read from its files without asking it anything (cheap enough for
every lesson page): the progress ``python -m cluster up`` writes, and whether its API server and
kubelet processes run."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from . import node
from .layout import Layout

STALE_SECONDS = 120  # a build prints progress more often than this


@dataclass(frozen=True)
class Status:
    phase: str  # "absent", "building", "starting", "ready", "failed", "stopped", "down"
    message: str
    updated: float | None
    working: bool  # a `python -m cluster up` is running now

    @property
    def ready(self) -> bool:
        return self.phase == "ready"


def read(layout: Layout) -> Status:
    try:
        progress = json.loads(layout.progress_file.read_text())
    except (OSError, ValueError):
        progress = None
    if not progress:
        return Status("absent", "the local cluster has not been started on this machine", None, False)
    phase, message, updated = progress.get("phase", ""), progress.get("message", ""), progress.get("updated")
    pid = progress.get("pid")
    working = isinstance(pid, int) and node._alive(pid) and phase in ("building", "starting")
    if phase in ("building", "starting") and not working:
        return Status("failed", f"`python -m cluster up` stopped while {message}", updated, False)
    if phase == "ready" and not all(node.running(layout, name) for name in ("kube-apiserver", "kubelet", "containerd")):
        return Status("down", "the local cluster was ready but some of its processes have stopped", updated, False)
    return Status(phase, message, updated, working)


def age(status: Status) -> float | None:
    return None if status.updated is None else max(0.0, time.time() - status.updated)
