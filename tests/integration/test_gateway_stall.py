"""An upload that stops mid-body (a Content-Length, some bytes, then nothing) is cut: a learner's
socket, the real gateway and the real engine, the requests written raw. Before, `docker cp` into
a container (archive PUT, relayed to the engine) and a build context (spooled by the gateway)
had no timeout once their head was in: each such connection was held for ever, bounded only by
the per-sandbox connection cap."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from sandbox.gateway import httpio
from sandbox.gateway.cleanup import destroy_learner_objects
from sandbox.gateway.proxy import ConnectionLimits
from sandbox.gateway.server import GatewayServer

from .gateway_helpers import exchange, gateway_images, status_of  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
BUSYBOX = "127.0.0.1:5000/library/busybox"




async def test_an_upload_that_stalls_is_a_408_and_its_connection_is_closed(
        gateway_images, labelled_leftovers, tmp_path):
    data_dir = tmp_path / "data"
    server = GatewayServer(data_dir=data_dir, connections=ConnectionLimits(stall_timeout=1.0), record_activity=False)
    sandbox_id = str(uuid.uuid4())
    try:
        socket_path = await server.serve(sandbox_id, "616161", "stall-test")
        body = json.dumps({"Image": BUSYBOX, "Cmd": ["true"]}).encode()
        answer = await exchange(socket_path, (
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
        assert status_of(answer) == 201, answer
        container = json.loads(answer.partition(b"\r\n\r\n")[2])["Id"]
        uploads = {
            "docker cp": f"PUT /v1.41/containers/{container}/archive?path=/tmp HTTP/1.1\r\n",
            "build": "POST /v1.41/build?t=stalled HTTP/1.1\r\n",
        }
        for name, start in uploads.items():
            # A tar header's worth of a 64 KiB body, then silence (the connection stays open).
            answer = await exchange(socket_path, (
                f"{start}Host: docker\r\nContent-Type: application/x-tar\r\nContent-Length: 65536\r\n\r\n"
            ).encode() + b"\0" * 512)
            assert status_of(answer) == 408 and b"stalled" in answer, (name, answer)
            assert b"Connection: close" in answer, (name, answer)
        # Nothing else was hurt: the learner's socket still answers.
        answer = await exchange(socket_path, b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        assert status_of(answer) == 200 and answer.endswith(b"OK"), answer
        assert httpio.STALLED.encode() not in answer
    finally:
        await server.close()
        await asyncio.to_thread(destroy_learner_objects, sandbox_id, data_dir=data_dir)
    assert labelled_leftovers(sandbox_id) == []
