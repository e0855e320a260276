"""A learner's `docker ... prune` through the gateway (sandbox/gateway/prune.py).

The real gateway (``LearnerProxy`` on a unix socket) in front of a fake engine that behaves as a
wedged engine does: every engine-wide ``/prune`` answers "a prune operation is already running"
(another prune holds the engine's lock), while lists, inspects and removals by id still work, and
one removal never answers. A learner's prune must still remove their own stopped objects, never
reach the engine's prune, never touch a classmate's, and answer in the engine's prune shape.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from sandbox.gateway import policy
from sandbox.gateway import prune as emulated_prune
from sandbox.gateway.policy import Learner
from sandbox.gateway.proxy import LearnerProxy

MINE = Learner(sandbox_id="5e1f0000-0000-4000-8000-00000000aaaa", owner_id="1", lesson="prune")
OTHER = Learner(sandbox_id="5e1f0000-0000-4000-8000-00000000bbbb", owner_id="2", lesson="prune")


def labels(learner: Learner) -> dict:
    return {policy.LABEL_SANDBOX: learner.sandbox_id, policy.LABEL_CREATED: policy.CREATED_VALUE}


class FakeEngine:
    """Objects as the engine lists them; filters by label and status as the engine does."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        self.containers = [
            {"Id": "a1" * 32, "State": "exited", "Labels": labels(MINE), "Created": 1, "SizeRw": 100},
            {"Id": "a2" * 32, "State": "running", "Labels": labels(MINE), "Created": 1, "ImageID": "sha256:" + "d" * 64},
            {"Id": "a3" * 32, "State": "exited", "Labels": {**labels(MINE), "keep": "yes"}, "Created": 1, "SizeRw": 1},
            {"Id": "a4" * 32, "State": "exited", "Labels": labels(MINE), "Created": 1, "SizeRw": 1},  # hangs
            {"Id": "b1" * 32, "State": "exited", "Labels": labels(OTHER), "Created": 1},
        ]
        self.hang = {"a4" * 32}
        self.images = [
            {"Id": "sha256:" + "c" * 64, "ParentId": "sha256:" + "p" * 64, "RepoTags": None, "Labels": labels(MINE),
             "Size": 1000, "Created": 1},
            {"Id": "sha256:" + "p" * 64, "ParentId": "sha256:" + "l" * 64, "RepoTags": None, "Labels": labels(MINE),
             "Size": 500, "Created": 1, "_intermediate": True},
            {"Id": "sha256:" + "d" * 64, "ParentId": "", "RepoTags": None, "Labels": labels(MINE), "Size": 9,
             "Created": 1},  # used by a running container
            {"Id": "sha256:" + "e" * 64, "ParentId": "", "RepoTags": None, "Labels": labels(OTHER), "Size": 9,
             "Created": 1},
        ]
        self.networks = [
            {"Id": "n1" * 32, "Name": "mine-free", "Labels": labels(MINE), "Containers": {}},
            {"Id": "n2" * 32, "Name": "mine-used", "Labels": labels(MINE), "Containers": {"a2" * 32: {}}},
            {"Id": "n3" * 32, "Name": "theirs", "Labels": labels(OTHER), "Containers": {}},
        ]
        self.volumes = [
            {"Name": "myvol", "Labels": labels(MINE), "_used": False},
            {"Name": "myusedvol", "Labels": labels(MINE), "_used": True},
            {"Name": "theirvol", "Labels": labels(OTHER), "_used": False},
        ]

    @staticmethod
    def _match(obj_labels: dict, filters: dict) -> bool:
        for expr in filters.get("label", []):
            key, eq, value = expr.partition("=")
            if key not in (obj_labels or {}) or (eq and obj_labels[key] != value):
                return False
        return True

    def answer(self, method: str, target: str):
        parts = urlsplit(target)
        path = parts.path.split("/", 2)[2]
        path = "/" + path
        query = parse_qs(parts.query)
        filters = json.loads(query.get("filters", ["{}"])[0])
        if path.endswith("/prune"):
            return 409, {"message": "a prune operation is already running"}
        if method == "GET" and path == "/containers/json":
            status = filters.get("status")
            return 200, [c for c in self.containers if self._match(c["Labels"], filters)
                         and (not status or c["State"] in status)]
        if method == "DELETE" and path.startswith("/containers/"):
            cid = path.split("/")[2]
            if cid in self.hang:
                return None, None
            self.containers = [c for c in self.containers if c["Id"] != cid]
            return 204, None
        if method == "GET" and path == "/images/json":
            children = {i["ParentId"] for i in self.images}
            return 200, [i for i in self.images if self._match(i["Labels"], filters) and i["Id"] not in children]
        if method == "DELETE" and path.startswith("/images/"):
            iid = unquote(path.split("/", 2)[2])
            if query.get("noprune") != ["1"]:
                return 500, {"message": "the gateway must not let the engine prune parents"}
            if any(c.get("ImageID") == iid for c in self.containers):
                return 409, {"message": "image is being used by a running container"}
            self.images = [i for i in self.images if i["Id"] != iid]
            return 200, [{"Deleted": iid}]
        if method == "GET" and path == "/networks":
            return 200, [{k: v for k, v in n.items() if k != "Containers"} for n in self.networks
                         if self._match(n["Labels"], filters)]
        if method == "GET" and path.startswith("/networks/"):
            return 200, next(n for n in self.networks if n["Id"] == path.split("/")[2])
        if method == "DELETE" and path.startswith("/networks/"):
            self.networks = [n for n in self.networks if n["Id"] != path.split("/")[2]]
            return 204, None
        if method == "GET" and path == "/volumes":
            dangling = filters.get("dangling") == ["true"]
            return 200, {"Volumes": [v for v in self.volumes if self._match(v["Labels"], filters)
                                     and not (dangling and v["_used"])]}
        if method == "DELETE" and path.startswith("/volumes/"):
            self.volumes = [v for v in self.volumes if v["Name"] != path.split("/")[2]]
            return 204, None
        return 404, {"message": "not in the fake"}

    async def handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
            self.requests.append((method, target))
            status, data = self.answer(method, target)
            if status is None:
                await asyncio.sleep(3600)  # a wedged engine: never answers
            body = json.dumps(data).encode() if data is not None else b""
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
def gateway(monkeypatch):
    monkeypatch.setattr(emulated_prune, "PRUNE_CALL_DEADLINE", 0.5)
    folder = Path(tempfile.mkdtemp(prefix="gwprune", dir="/tmp"))
    engine = FakeEngine()
    return folder, engine


async def prune(folder: Path, engine: FakeEngine, kind: str, filters: dict | None = None) -> tuple[int, dict]:
    server = await asyncio.start_unix_server(engine.handle, path=str(folder / "engine.sock"))
    learner_proxy = LearnerProxy(MINE, str(folder / "engine.sock"), folder / "state")
    gateway = await asyncio.start_unix_server(learner_proxy.handle, path=str(folder / "gw.sock"))
    try:
        reader, writer = await asyncio.open_unix_connection(str(folder / "gw.sock"))
        query = f"?filters={json.dumps(filters)}" if filters else ""
        writer.write(f"POST /v1.41/{kind}/prune{query.replace(' ', '')} HTTP/1.1\r\nHost: docker\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        raw = await reader.read()
        writer.close()
    finally:
        gateway.close()
        server.close()
        (folder / "engine.sock").unlink(missing_ok=True)
        (folder / "gw.sock").unlink(missing_ok=True)
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head[9:12]), json.loads(body)


async def test_container_prune_removes_only_the_learners_stopped_containers_while_the_engine_prune_is_locked(gateway):
    folder, engine = gateway
    status, answer = await prune(folder, engine, "containers", {"label!": ["keep=yes"]})
    assert status == 200, answer
    # The hanging removal is skipped within its deadline; the rest is done.
    assert answer["ContainersDeleted"] == ["a1" * 32] and answer["SpaceReclaimed"] == 100
    left = {c["Id"][:2] for c in engine.containers}
    assert left == {"a2", "a3", "a4", "b1"}  # running, excluded by label!, wedged, a classmate's
    assert not [r for r in engine.requests if r[1].split("?")[0].endswith("/prune")]


async def test_image_prune_removes_own_dangling_images_children_first_and_never_lets_the_engine_walk_parents(gateway):
    folder, engine = gateway
    status, answer = await prune(folder, engine, "images", {"dangling": ["true"]})
    assert status == 200, answer
    assert answer["ImagesDeleted"] == [{"Deleted": "sha256:" + "c" * 64}, {"Deleted": "sha256:" + "p" * 64}]
    assert answer["SpaceReclaimed"] == 1500
    assert {i["Id"][7] for i in engine.images} == {"d", "e"}  # in use; a classmate's
    assert not [r for r in engine.requests if r[1].split("?")[0].endswith("/prune")]


async def test_network_and_volume_prune_remove_only_the_learners_unused_ones(gateway):
    folder, engine = gateway
    status, answer = await prune(folder, engine, "networks")
    assert (status, answer) == (200, {"NetworksDeleted": ["mine-free"]})
    status, answer = await prune(folder, engine, "volumes")
    assert (status, answer) == (200, {"VolumesDeleted": ["myvol"], "SpaceReclaimed": 0})
    assert {n["Name"] for n in engine.networks} == {"mine-used", "theirs"}
    assert {v["Name"] for v in engine.volumes} == {"myusedvol", "theirvol"}


async def test_prune_refuses_filters_the_engine_does_not_know(gateway):
    folder, engine = gateway
    status, answer = await prune(folder, engine, "containers", {"name": ["x"]})
    assert status == 400 and "name" in answer["message"]
    assert engine.requests == []
