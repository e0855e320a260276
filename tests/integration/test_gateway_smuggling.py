"""The gateway forwards one canonical request per learner request, on the real engine.

The attack: a bare LF in a header value ends the line for the engine (Go) but not for a parser
that splits on CRLF, so `User-Agent: x\\n\\nPOST /containers/create ...` was one request to the
gateway (a harmless ping) and two to the engine (the second, unchecked, made a privileged
container with the host's / bound). Here it is sent raw to a learner's socket and from inside a
real docker sandbox with `docker system dial-stdio`; then the gateway's connection limits (slow
heads, idle connections, a cap per sandbox) and answers that named a classmate's objects.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import docker
import pytest

from sandbox.gateway import httpio
from sandbox.gateway.cleanup import destroy_learner_objects
from sandbox.gateway.proxy import ConnectionLimits
from sandbox.gateway.server import GatewayServer, short_path

from .gateway_helpers import exchange, gateway_images, start_workspace, status_of  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

BUSYBOX = "127.0.0.1:5000/library/busybox"


def smuggling_request(name: str) -> bytes:
    """A ping whose User-Agent hides, behind a bare LF, the create the attack run made."""
    body = json.dumps({"Image": BUSYBOX, "Cmd": ["true"],
                       "HostConfig": {"Privileged": True, "Binds": ["/:/host"]}}).encode()
    hidden = (f"POST /v1.41/containers/create?name={name} HTTP/1.1\nHost: docker\n"
              f"Content-Type: application/json\nContent-Length: {len(body)}\n\n").encode() + body
    return b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: x\n\n" + hidden + b"\r\n\r\n"


def assert_nothing_smuggled(docker_client, name: str, since: datetime) -> None:
    """No container by the smuggled name; no privileged one, nor one that binds the host's /,
    made on this engine since ``since`` (by anyone: the smuggled one would carry no labels)."""
    api = docker_client.api
    assert api.containers(all=True, filters={"name": name}) == []
    for summary in api.containers(all=True):
        if summary["Created"] < since.timestamp() - 1:
            continue
        try:
            host = api.inspect_container(summary["Id"]).get("HostConfig") or {}
        except docker.errors.NotFound:
            continue  # another test's container, gone meanwhile
        assert not host.get("Privileged"), f"a privileged container appeared: {summary['Names']}"
        assert not any(b.split(":")[0] == "/" for b in host.get("Binds") or []), summary["Names"]


async def remove_smuggled(docker_client, name: str) -> None:
    """Only ever finds something when the gateway let the attack through (the engine may make it
    a moment after the answer): never leave a privileged container behind."""
    for _ in range(10):
        for summary in docker_client.api.containers(all=True, filters={"name": name}):
            docker_client.api.remove_container(summary["Id"], force=True)
            return
        await asyncio.sleep(0.2)


async def first_answer(socket_path, wire: bytes) -> bytes:
    """Send ``wire`` and read one answer (head and body), whether or not the connection stays open."""
    with short_path(socket_path) as path:
        reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(wire)
        await writer.drain()
        head = await asyncio.wait_for(httpio.read_head(reader), 30)
        body = await asyncio.wait_for(httpio.read_response_body(reader, httpio.response_framing(head, "GET")), 30)
        return head.start.encode("latin-1") + b"\r\n" + body
    finally:
        writer.close()




class Gateway:
    """A real gateway (``GatewayServer``) for one or two learners, and the host's docker CLI on it."""

    def __init__(self, tmp_path: Path, connections: ConnectionLimits | None = None):
        self.data_dir = tmp_path / "data"
        self.server = GatewayServer(data_dir=self.data_dir, connections=connections, record_activity=False)
        self.sandboxes: list[str] = []
        self.links: list[Path] = []

    async def learner(self, owner: str) -> tuple[str, Path, Path]:
        sandbox_id = str(uuid.uuid4())
        self.sandboxes.append(sandbox_id)
        socket_path = await self.server.serve(sandbox_id, owner, "smuggling-test")
        link = Path(os.path.realpath("/tmp")) / f"gw-smug-{sandbox_id[:8]}.sock"
        link.symlink_to(socket_path)  # a short unix address for the CLI
        self.links.append(link)
        return sandbox_id, socket_path, link

    async def close(self) -> None:
        for link in self.links:
            link.unlink(missing_ok=True)
        await self.server.close()
        for sandbox_id in self.sandboxes:
            await asyncio.to_thread(destroy_learner_objects, sandbox_id, data_dir=self.data_dir)


async def cli(link: Path, *args: str, timeout: float = 120) -> tuple[int, str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{link}", "DOCKER_BUILDKIT": "0"}
    proc = await asyncio.create_subprocess_exec("docker", *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(errors="replace")


async def test_a_request_smuggled_behind_a_bare_lf_is_a_400_and_makes_nothing(
        gateway_images, docker_client, labelled_leftovers, tmp_path):
    since = datetime.now(timezone.utc).replace(microsecond=0)
    gateway = Gateway(tmp_path)
    name = f"smuggled-{uuid.uuid4().hex[:8]}"
    try:
        sandbox_id, socket_path, _ = await gateway.learner("515151")
        answer = await first_answer(socket_path, smuggling_request(name))
        assert status_of(answer) == 400, answer[:300]
        # Other bare-LF and control-character tricks on the same socket, and lengths that are
        # not ASCII digits (they were a 500): all a 400.
        for wire in (
            b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\nAccept: x\r\nTransfer-Encoding: chunked\n\r\n\r\n",
            b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\nX-Registry-Auth: e30=\x00\r\n\r\n",
            b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\nAccept: x\r\n \r\n\r\n",
            b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: \xb2\r\n\r\n{}",
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: \u0665\r\n\r\n{}".encode(),
        ):
            answer = await exchange(socket_path, wire)
            assert status_of(answer) == 400, (wire, answer[:300])
        assert_nothing_smuggled(docker_client, name, since)
    finally:
        await remove_smuggled(docker_client, name)
        await gateway.close()
    assert labelled_leftovers(sandbox_id) == []


async def test_smuggling_from_inside_a_sandbox_with_dial_stdio_is_a_400(gateway_images, docker_client):
    """What a learner can do from their shell: `docker system dial-stdio` is a raw pipe to the gateway."""
    since = datetime.now(timezone.utc).replace(microsecond=0)
    name = f"smuggled-{uuid.uuid4().hex[:8]}"
    ws = await start_workspace()
    try:
        wire = base64.b64encode(smuggling_request(name)).decode()
        result = await ws.sh(f"echo {wire} | base64 -d | timeout 60 docker system dial-stdio", timeout=90)
        assert result.output.startswith("HTTP/1.1 400"), result.output[:400]
        assert result.output.count("HTTP/1.1 ") == 1, result.output
        # The sandbox's docker still works: only the malformed request was refused.
        ping = await ws.sh("printf 'GET /_ping HTTP/1.1\\r\\nHost: docker\\r\\nConnection: close\\r\\n\\r\\n'"
                           " | timeout 60 docker system dial-stdio", timeout=90)
        assert ping.output.startswith("HTTP/1.1 200") and ping.output.endswith("OK"), ping.output
        label = {"label": f"tutorial.sandbox={ws.id}"}
        assert [c for c in docker_client.containers.list(all=True, ignore_removed=True, filters=label) if c.id != ws.ref] == []
        assert_nothing_smuggled(docker_client, name, since)
    finally:
        await remove_smuggled(docker_client, name)
        await ws.backend.destroy(ws.id)


async def test_slow_and_idle_connections_are_closed_but_streams_are_not_cut(
        gateway_images, docker_client, labelled_leftovers, tmp_path):
    gateway = Gateway(tmp_path, ConnectionLimits(head_timeout=1.0, idle_timeout=1.5, connections_max=8))
    try:
        sandbox_id, socket_path, link = await gateway.learner("525252")
        # Slowloris: half a head, then nothing. The gateway says why and closes.
        answer = await exchange(socket_path, b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n")
        assert status_of(answer) == 408, answer
        # A connection that never sends anything, and one idle after its first request: closed.
        assert await exchange(socket_path, b"") == b""
        answer = await exchange(socket_path, b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        assert status_of(answer) == 200 and answer.endswith(b"OK"), answer

        # Answers that take longer than both timeouts are never cut: a hijacked attach (run
        # without -d), exec, and logs -f that waits for output.
        rc, out = await cli(link, "run", "--rm", BUSYBOX, "sh", "-c", "sleep 4; echo attached-to-the-end")
        assert rc == 0 and "attached-to-the-end" in out, out
        rc, cid = await cli(link, "run", "-d", BUSYBOX, "sh", "-c", "sleep 4; echo logged-late; sleep 3")
        assert rc == 0, cid
        cid = cid.strip().splitlines()[-1]
        rc, out = await cli(link, "exec", cid, "sh", "-c", "sleep 3; echo exec-to-the-end")
        assert rc == 0 and "exec-to-the-end" in out, out
        rc, out = await cli(link, "logs", "-f", cid)
        assert rc == 0 and "logged-late" in out, out
    finally:
        await gateway.close()
    assert labelled_leftovers(sandbox_id) == []


async def test_a_sandbox_may_hold_only_so_many_connections(gateway_images, labelled_leftovers, tmp_path):
    gateway = Gateway(tmp_path, ConnectionLimits(connections_max=4))
    held = []
    try:
        sandbox_id, socket_path, link = await gateway.learner("535353")
        other_id, other_socket, _ = await gateway.learner("545454")
        with short_path(socket_path) as path:
            for _ in range(4):
                reader, writer = await asyncio.open_unix_connection(path)
                writer.write(b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n")  # kept alive
                head = await asyncio.wait_for(httpio.read_head(reader), 30)
                assert httpio.status_of(head) == 200
                await httpio.read_response_body(reader, httpio.response_framing(head, "GET"))
                held.append(writer)
        answer = await exchange(socket_path, b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        assert status_of(answer) == 429 and b"too many connections" in answer, answer
        rc, out = await cli(link, "ps")
        assert rc != 0 and "too many connections to the classroom gateway" in out, out
        # Another learner is not affected by this one's connections.
        answer = await exchange(other_socket, b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        assert status_of(answer) == 200, answer
        # A connection given back makes room again.
        held.pop().close()
        for _ in range(50):
            rc, out = await cli(link, "ps")
            if rc == 0:
                break
            await asyncio.sleep(0.1)  # the gateway sees the close on its next loop turn
        assert rc == 0, out
    finally:
        for writer in held:
            writer.close()
        await gateway.close()
    assert labelled_leftovers(sandbox_id) == [] and labelled_leftovers(other_id) == []


async def test_rename_and_exec_answers_name_nothing_of_a_classmate(gateway_images, labelled_leftovers, tmp_path):
    gateway = Gateway(tmp_path)
    try:
        alice_id, _, alice = await gateway.learner("565656")
        bob_id, bob_socket, bob = await gateway.learner("575757")
        taken = f"taken-{uuid.uuid4().hex[:8]}"
        rc, theirs = await cli(alice, "run", "-d", "--name", taken, BUSYBOX, "sleep", "120")
        assert rc == 0, theirs
        theirs = theirs.strip().splitlines()[-1]
        rc, mine = await cli(bob, "create", BUSYBOX, "true")
        assert rc == 0, mine
        mine = mine.strip().splitlines()[-1]

        # Names are each learner's own: Bob may take Alice's name; a clash is with his own only,
        # and its message names no container.
        rc, out = await cli(bob, "rename", mine, taken)
        assert rc == 0, out
        rc, out = await cli(bob, "run", "-d", "--name", f"{taken}-2", BUSYBOX, "true")
        assert rc == 0, out
        rc, out = await cli(bob, "rename", taken, f"{taken}-2")
        assert rc != 0 and f'the container name "{taken}-2" is already in use' in out, out
        assert theirs[:12] not in out and mine[:12] not in out, out
        rc, out = await cli(alice, "inspect", "-f", "{{.Id}}", taken)
        assert rc == 0 and out.strip() == theirs, out

        # Alice's exec, asked about by Bob: no such exec, naming only the id Bob sent.
        body = json.dumps({"Cmd": ["true"], "AttachStdout": True}).encode()
        with short_path(gateway.server.socket_path(alice_id)) as path:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(f"POST /v1.41/containers/{taken}/exec HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            created = await asyncio.wait_for(reader.read(), 30)
            writer.close()
        assert status_of(created) == 201, created
        exec_id = json.loads(created.split(b"\r\n\r\n", 1)[1])["Id"]
        for wire in (f"GET /v1.41/exec/{exec_id}/json HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
                     f"POST /v1.41/exec/{exec_id}/resize?h=10&w=10 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"):
            answer = await exchange(bob_socket, wire.encode())
            assert status_of(answer) == 404, answer
            message = json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"]
            assert message == f"No such exec instance: {exec_id}", message
            assert theirs[:12] not in answer.decode(errors="replace")
    finally:
        await gateway.close()
    assert labelled_leftovers(alice_id) == [] and labelled_leftovers(bob_id) == []
