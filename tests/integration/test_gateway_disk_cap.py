"""A learner container that fills its writable layer past the classroom's cap is killed by the
gateway, and its learner's console is told why; a container within the cap runs on."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from channels.layers import get_channel_layer

from sandbox.gateway.cleanup import destroy_learner_objects
from sandbox.gateway.policy import Limits
from sandbox.gateway.server import GatewayServer
from sandbox.events import group_name

from .gateway_helpers import gateway_images  # noqa: F401
from .test_gateway_relay import BUSYBOX, MiB, docker

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_a_container_that_writes_past_the_cap_is_killed_and_its_learner_told(gateway_images, docker_client,
                                                                                      labelled_leftovers, tmp_path):
    sandbox_id = str(uuid.uuid4())
    server = GatewayServer(data_dir=tmp_path / "data", limits=Limits(container_disk_max=16 * MiB), record_activity=False)
    socket_path = await server.serve(sandbox_id, "434343", "disk-test")
    link = Path(os.path.realpath("/tmp")) / f"gw-disk-{sandbox_id[:8]}.sock"
    link.symlink_to(socket_path)
    layer = get_channel_layer()
    console = await layer.new_channel()
    await layer.group_add(group_name(sandbox_id), console)
    try:
        rc, big = await docker(str(link), "run", "-d", "--name", "filler", BUSYBOX,
                               "sh", "-c", "dd if=/dev/zero of=/big bs=1M count=40 2>/dev/null; sleep 600")
        assert rc == 0, big
        rc, small = await docker(str(link), "run", "-d", "--name", "modest", BUSYBOX,
                                 "sh", "-c", "dd if=/dev/zero of=/small bs=1M count=2 2>/dev/null; sleep 600")
        assert rc == 0, small
        big, small = big.strip().splitlines()[-1], small.strip().splitlines()[-1]
        for _ in range(100):  # until dd has written its 40 MiB
            sizes = docker_client.api.containers(size=True, filters={"id": big})
            if sizes and (sizes[0].get("SizeRw") or 0) > 32 * MiB:
                break
            await asyncio.sleep(0.1)

        assert await server.enforce_disk_cap() == [big]
        assert docker_client.containers.get(big).status != "running"
        assert docker_client.containers.get(small).status == "running"
        message = await layer.receive(console)
        assert message["type"] == "sandbox.notice"
        assert "filler" in message["message"] and "16 MiB" in message["message"]
        rc, listing = await docker(str(link), "ps", "-a", "--format", "{{.Names}} {{.Status}}")
        assert "filler Exited (137)" in listing, listing
    finally:
        link.unlink(missing_ok=True)
        await server.stop(sandbox_id)
        destroy_learner_objects(sandbox_id, data_dir=tmp_path / "data")
    assert labelled_leftovers(sandbox_id) == []
