"""Uploads through the gateway on the real engine (the socket-level body relay): a `docker cp`
round trip keeps every byte, the classroom upload cap still holds mid-stream, and a client that
pipelines past a chunked body gets its answer and then a closed connection."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

import pytest

from sandbox.gateway import httpio
from sandbox.gateway.cleanup import destroy_learner_objects
from sandbox.gateway.policy import Limits
from sandbox.gateway.server import GatewayServer, short_path

from .gateway_helpers import gateway_images  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

BUSYBOX = "127.0.0.1:5000/library/busybox"
MiB = 1024 * 1024


async def docker(sock: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_BUILDKIT": "0"}
    proc = await asyncio.create_subprocess_exec("docker", *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(errors="replace")


async def test_uploads_keep_every_byte_and_the_cap(gateway_images, docker_client, labelled_leftovers, tmp_path):
    sandbox_id = str(uuid.uuid4())
    server = GatewayServer(data_dir=tmp_path / "data", limits=Limits(upload_max=4 * MiB))
    socket_path = await server.serve(sandbox_id, "424242", "relay-test")
    link = Path(os.path.realpath("/tmp")) / f"gw-relay-{sandbox_id[:8]}.sock"
    link.symlink_to(socket_path)  # a short unix address for the CLI
    try:
        rc, target = await docker(str(link), "create", BUSYBOX, "true")
        assert rc == 0, target
        target = target.strip().splitlines()[-1]
        payload = os.urandom(3 * MiB + 12345)
        (tmp_path / "in.bin").write_bytes(payload)
        rc, out = await docker(str(link), "cp", str(tmp_path / "in.bin"), f"{target}:/in.bin")
        assert rc == 0, out
        rc, out = await docker(str(link), "cp", f"{target}:/in.bin", str(tmp_path / "back.bin"))
        assert rc == 0, out
        assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).digest() == hashlib.sha256(payload).digest()

        (tmp_path / "big.bin").write_bytes(os.urandom(5 * MiB))
        rc, out = await docker(str(link), "cp", str(tmp_path / "big.bin"), f"{target}:/big.bin")
        assert rc != 0 and "larger than the classroom limit of 4 MiB" in out, out
        # The engine got no more than the cap: whatever it extracted before the cut is smaller.
        rc, out = await docker(str(link), "cp", f"{target}:/big.bin", str(tmp_path / "big-back.bin"))
        assert rc != 0 or (tmp_path / "big-back.bin").stat().st_size <= 4 * MiB, out

        # A chunked upload with the next request pipelined behind it: the upload is answered,
        # then the connection closes (those bytes were read with the body, not served).
        tar = _tar_of("hello.txt", b"hello\n")
        body = b"%x\r\n" % len(tar) + tar + b"\r\n0\r\n\r\n"
        with short_path(socket_path) as path:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(f"PUT /v1.41/containers/{target}/archive?path=/ HTTP/1.1\r\nHost: d\r\n"
                         "Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                         + body + b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 30)
            writer.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b"Connection: close" in answer and answer.count(b"HTTP/1.1") == 1, answer
        rc, out = await docker(str(link), "cp", f"{target}:/hello.txt", str(tmp_path / "hello.txt"))
        assert rc == 0 and (tmp_path / "hello.txt").read_bytes() == b"hello\n", out

        # Without pipelining the connection stays usable: the next request is read and answered.
        with short_path(socket_path) as path:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(f"PUT /v1.41/containers/{target}/archive?path=/ HTTP/1.1\r\nHost: d\r\n"
                         "Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + body)
            head = await asyncio.wait_for(httpio.read_head(reader), 30)
            assert httpio.status_of(head) == 200, head
            await httpio.read_response_body(reader, httpio.response_framing(head, "PUT"))
            writer.write(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
            head = await asyncio.wait_for(httpio.read_head(reader), 30)
            ping = await httpio.read_response_body(reader, httpio.response_framing(head, "GET"))
            writer.close()
        assert httpio.status_of(head) == 200 and ping == b"OK", (head, ping)
    finally:
        link.unlink(missing_ok=True)
        await server.close()
        await asyncio.to_thread(destroy_learner_objects, sandbox_id, data_dir=tmp_path / "data")
    assert labelled_leftovers(sandbox_id) == []


def _tar_of(name: str, data: bytes) -> bytes:
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
