"""SECURITY.md's gateway rows, driven with the real docker CLI inside a real sandbox against the
real engine: every attack ends refused, not found or filtered, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import json

import pytest

from sandbox.gateway.server import short_path

from .gateway_helpers import blocks, gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

BUSYBOX = "127.0.0.1:5000/library/busybox"
CLI_ATTACKS = {
    "privileged": (f"docker run --rm --privileged {BUSYBOX} true", "--privileged is not allowed"),
    "host root bind": (f"docker run --rm -v /:/h {BUSYBOX} ls /h", "bind mounts of host paths are not allowed"),
    "engine socket bind": (f"docker run --rm -v /var/run/docker.sock:/s {BUSYBOX} true", "host paths"),
    "mount bind": (f"docker run --rm --mount type=bind,src=/,dst=/h {BUSYBOX} true", "bind mounts"),
    "pid host": (f"docker run --rm --pid=host {BUSYBOX} true", "--pid=host is not allowed"),
    "net host": (f"docker run --rm --net=host {BUSYBOX} true", "--network=host is not allowed"),
    "cap add": (f"docker run --rm --cap-add SYS_ADMIN {BUSYBOX} true", "--cap-add is not allowed"),
    "device": (f"docker run --rm --device /dev/kmsg {BUSYBOX} true", "--device is not allowed"),
    "seccomp": (f"docker run --rm --security-opt seccomp=unconfined {BUSYBOX} true", "unconfined is not allowed"),
    "apparmor": (f"docker run --rm --security-opt apparmor=unconfined {BUSYBOX} true", "unconfined is not allowed"),
    "ports on all interfaces": (f"docker run --rm -p 0.0.0.0:18080:80 {BUSYBOX} true", "127.0.0.1 only"),
    "publish all": (f"docker run --rm -P {BUSYBOX} true", "-P is not allowed"),
    "volume bind device": ("docker volume create -o type=none -o o=bind -o device=/ rootvol", "driver options"),
    "swarm init": ("docker swarm init", "denied by classroom policy"),
    "service create": (f"docker service create {BUSYBOX}", "denied by classroom policy"),
    "plugin install": ("docker plugin install vieux/sshfs", "denied by classroom policy"),
    "exec privileged": ("docker exec --privileged nothing true", "No such container"),
    "pull from elsewhere": ("docker pull busybox", "classroom registry only"),
    # The real CLI, not the sandbox's `docker` wrapper (which falls back to the classic builder):
    # BuildKit dials /session first, and the gateway refuses it.
    "buildkit": ("mkdir -p b && echo 'FROM scratch' > b/Dockerfile && DOCKER_BUILDKIT=1 /usr/libexec/tutorial/docker build b",
                 "received 403"),
}


async def test_cli_attacks_are_refused_with_the_policy_message(gateway_images, docker_client):
    ws = await start_workspace()
    try:
        script = "; ".join(f'echo "== {name}"; {cmd} 2>&1; echo "rc=$?"' for name, (cmd, _) in CLI_ATTACKS.items())
        found = blocks(await ws.out(script, timeout=150))
        for name, (_cmd, expected) in CLI_ATTACKS.items():
            assert expected in found[name], f"{name}: {found[name]}"
            assert "rc=0" not in found[name], f"{name} succeeded: {found[name]}"
        # What a learner types, `DOCKER_BUILDKIT=1 docker build`, says why and builds the classic way.
        fallback = await ws.sh(f"mkdir -p k && echo 'FROM {BUSYBOX}' > k/Dockerfile && DOCKER_BUILDKIT=1 docker build -q k 2>&1")
        assert fallback.exit_code == 0 and "BuildKit is not available in the classroom" in fallback.output, fallback.output
        # Nothing was made: no privileged or host-mounting container, no bind volume.
        label = {"label": f"tutorial.sandbox={ws.id}"}
        learner_made = [c for c in docker_client.containers.list(all=True, ignore_removed=True, filters=label) if c.id != ws.ref]
        assert learner_made == []
        assert docker_client.volumes.list(filters={"name": "rootvol"}) == []
    finally:
        await ws.backend.destroy(ws.id)


async def raw_request(socket_path, request: bytes) -> tuple[int, str]:
    with short_path(socket_path) as path:
        reader, writer = await asyncio.open_unix_connection(path)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), 20)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def test_raw_api_tricks_on_the_learner_socket_are_refused(gateway_images, docker_client):
    """Requests the CLI would never send, straight onto the sandbox's own gateway socket."""
    ws = await start_workspace()
    try:
        image = BUSYBOX
        tricks = {
            "lowercase privileged": post("/v1.41/containers/create",
                                         f'{{"image":"{image}","hostconfig":{{"privileged":true}}}}'.encode()),
            "duplicate key": post("/v1.41/containers/create",
                                  f'{{"Image":"{image}","HostConfig":{{"Privileged":false,"Privileged":true}}}}'.encode()),
            "case duplicate": post("/v1.41/containers/create",
                                   f'{{"Image":"{image}","HostConfig":{{"Binds":[],"binds":["/:/h"]}}}}'.encode()),
            "long s": post("/v1.41/containers/create",
                           ('{"Image":"%s","HostConfig":{"\u017fecurityOpt":["seccomp=unconfined"]}}' % image).encode()),
            "mounts bind": post("/v1.41/containers/create", json.dumps({"Image": image, "HostConfig": {
                "Mounts": [{"Type": "bind", "Source": "/", "Target": "/h"}]}}).encode()),
            "double slash": b"GET //v1.41/containers/json HTTP/1.1\r\nHost: d\r\n\r\n",
            "encoded slash": b"GET /v1.41/containers/..%2F..%2Fswarm/json HTTP/1.1\r\nHost: d\r\n\r\n",
            "old api start with hostconfig": post("/v1.23/containers/x/start", b'{"Privileged":true}'),
            "length mismatch": (b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            "swarm": post("/v1.41/swarm/init", b"{}"),
            "plugins": b"GET /v1.41/plugins HTTP/1.1\r\nHost: d\r\n\r\n",
            "secrets": b"GET /v1.41/secrets HTTP/1.1\r\nHost: d\r\n\r\n",
            "nodes": b"GET /v1.41/nodes HTTP/1.1\r\nHost: d\r\n\r\n",
            "import": post(f"/v1.41/images/create?fromSrc=-&repo=x", b""),
            "load": post("/v1.41/images/load", b""),
        }
        for name, request in tricks.items():
            status, body = await raw_request(ws.socket, request)
            assert status in (400, 403, 404), f"{name}: {status} {body}"
        label = {"label": f"tutorial.sandbox={ws.id}"}
        assert [c for c in docker_client.containers.list(all=True, ignore_removed=True, filters=label) if c.id != ws.ref] == []
        # The sandbox container itself is not the learner's to touch either.
        status, _ = await raw_request(ws.socket, f"GET /v1.41/containers/{ws.ref}/json HTTP/1.1\r\nHost: d\r\n\r\n".encode())
        assert status == 404
    finally:
        await ws.backend.destroy(ws.id)
