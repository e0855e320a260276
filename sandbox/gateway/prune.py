"""A learner's ``docker container|image|network|volume prune``, emulated for their objects only.

An engine-wide prune takes one lock for the whole engine, so during a wedge it hangs and every
classmate's prune gets "a prune operation is already running". The gateway lists the learner's own
objects (owner labels) and removes them one by one by id, each call with a deadline and all within
a budget (``PRUNE_BUDGET``); what is left stays for the next prune.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
import time
from urllib.parse import quote

from .httpio import HttpError
from .names import Names
from .policy import Learner, PolicyDenied
from .state import TagBook

log = logging.getLogger(__name__)

PRUNE_CALL_DEADLINE = 15.0  # seconds for one engine call of an emulated prune
PRUNE_BUDGET = 60.0  # seconds for one emulated prune; what is left stays for the next one
PRUNE_ROUNDS = 16  # image prune: removing a child can leave its own parent dangling, round after round


class Pruner:
    """One emulated prune (``LearnerProxy.h_prune``): the learner's objects, removed one by one.

    ``filters`` is the learner's filters with the owner labels forced in (``policy.owner_filters``).
    A list the engine does not answer in time raises (the learner is told to try again); a removal
    that fails or times out is skipped, as the engine's own prune skips what is in use."""

    def __init__(self, engine, learner: Learner, book: TagBook, names: Names, filters: dict, until: float):
        self.engine = engine  # LearnerProxy.engine: one small JSON call
        self.learner = learner
        self.book = book
        self.names = names
        self.until = until
        self.labels = list(filters.get("label", {}))
        self.not_labels = list(filters.get("label!", {}))
        before = list(filters.get("until", {}))
        if len(before) > 1:
            raise PolicyDenied("more than one until filter specified", status=400)
        self.before = until_time(before[0]) if before else None
        dangling = list(filters.get("dangling", {}))
        if any(d.lower() not in ("true", "1", "false", "0") for d in dangling):
            raise PolicyDenied(f"invalid filter 'dangling={dangling[0]}'", status=400)
        self.dangling = not dangling or any(d.lower() in ("true", "1") for d in dangling)

    async def call(self, method: str, path: str, query: list | None = None):
        left = self.until - asyncio.get_running_loop().time()
        if left <= 0:
            raise TimeoutError
        async with asyncio.timeout(min(PRUNE_CALL_DEADLINE, left)):
            return await self.engine(method, path, query)

    async def listing(self, path: str, filters: dict) -> list:
        status, data = await self.call("GET", path, [("filters", json.dumps(filters))] + (
            [("all", "1")] if path == "/containers/json" else []))
        if status != 200:
            raise HttpError(502, f"the engine could not list {path}")
        if path == "/volumes":
            data = (data or {}).get("Volumes")
        return data if isinstance(data, list) else []

    async def remove(self, path: str, query: list | None = None):
        """The engine's answer to a DELETE, or None when it failed (logged, left for next time)."""
        try:
            status, data = await self.call("DELETE", path, query)
        except (TimeoutError, OSError, HttpError) as exc:
            log.warning("prune for sandbox %s: %s not removed: %r", self.learner.sandbox_id, path, exc)
            return None
        if status >= 300:
            log.info("prune for sandbox %s: %s kept (%s): %s", self.learner.sandbox_id, path, status, data)
            return None
        return data if data is not None else True

    def chosen(self, labels: dict | None, created) -> bool:
        """The learner's ``label!`` and ``until`` filters (the engine's lists do not take them)."""
        labels = labels or {}
        for expr in self.not_labels:
            key, eq, value = expr.partition("=")
            if key in labels and (not eq or labels[key] == value):
                return False
        if self.before is not None:
            when = created_time(created)
            if when is None or when >= self.before:
                return False
        return True

    async def containers(self) -> dict:
        deleted, space = [], 0
        stopped = await self.listing("/containers/json", {"label": self.labels, "status": ["created", "exited", "dead"]})
        for container in stopped:
            if self.chosen(container.get("Labels"), container.get("Created")) and \
                    await self.remove(f"/containers/{container['Id']}") is not None:
                deleted.append(container["Id"])
                space += container.get("SizeRw") or 0
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": space}

    async def images(self) -> dict:
        deleted: list = []
        space = 0
        tried: set[str] = set()
        filters = {"label": self.labels, **({"dangling": ["true"]} if self.dangling else {})}
        for _ in range(PRUNE_ROUNDS):
            images = await self.listing("/images/json", filters)
            used = {c.get("ImageID") for c in await self.listing("/containers/json", {"label": self.learner.label_filters})}
            parents = {image.get("ParentId") for image in images}
            # Children first; a parent becomes dangling once its child is gone (the next round).
            todo = [image for image in images if image["Id"] not in tried and image["Id"] not in used
                    and image["Id"] not in parents and self.chosen(image.get("Labels"), image.get("Created"))]
            if not todo:
                break
            for image in todo:
                tried.add(image["Id"])
                gone = False
                # noprune: the engine never walks into parents, which may be a lesson image.
                for tag in [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]:
                    answer = await self.remove(f"/images/{quote(tag, safe='/:@')}", [("noprune", "1")])
                    if answer is not None:
                        self.book.discard(tag)
                        entries = answer if isinstance(answer, list) else []
                        deleted += entries
                        gone = gone or any("Deleted" in e for e in entries)
                if not gone:
                    answer = await self.remove(f"/images/{image['Id']}", [("noprune", "1")])
                    entries = answer if isinstance(answer, list) else []
                    deleted += entries
                    gone = any("Deleted" in e for e in entries)
                if gone:
                    space += image.get("Size") or 0
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": space}

    async def networks(self) -> dict:
        deleted = []
        for network in await self.listing("/networks", {"label": self.labels}):
            if not self.chosen(network.get("Labels"), network.get("Created")):
                continue
            try:
                status, info = await self.call("GET", f"/networks/{network['Id']}")
            except (TimeoutError, OSError, HttpError):
                continue
            if status == 200 and not (info or {}).get("Containers") and \
                    await self.remove(f"/networks/{network['Id']}") is not None:
                deleted.append(self.names.learner(network.get("Name") or network["Id"]))
        return {"NetworksDeleted": deleted or None}

    async def volumes(self) -> dict:
        deleted = []
        # API 1.41 (what the gateway speaks): every unused volume, named or anonymous.
        for volume in await self.listing("/volumes", {"label": self.labels, "dangling": ["true"]}):
            if self.chosen(volume.get("Labels"), volume.get("CreatedAt")) and \
                    await self.remove(f"/volumes/{quote(volume['Name'])}") is not None:
                deleted.append(self.names.learner(volume["Name"]))
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": 0}


# What each prune does, and the filters the engine's prune of that kind takes.
PRUNES = {
    "containers": (Pruner.containers, {"until", "label", "label!"}),
    "images": (Pruner.images, {"dangling", "until", "label", "label!"}),
    "networks": (Pruner.networks, {"until", "label", "label!"}),
    "volumes": (Pruner.volumes, {"label", "label!", "all"}),
}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def until_time(value: str) -> float:
    """The engine's ``until`` filter as a unix time: a Go duration before now, a unix timestamp,
    or an RFC 3339 date."""
    if _DURATION.fullmatch(value):
        return time.time() - sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(value))
    created = created_time(value)
    if created is None:
        raise PolicyDenied(f"invalid until filter {value!r}", status=400)
    return created


def created_time(value) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
