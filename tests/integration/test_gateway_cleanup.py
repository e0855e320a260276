"""The end of a sandbox cleans up after its learner, per learner, without waiting on the engine
for ever: the gateway's folder and record go, tag records whose image went elsewhere are
dropped, and a container the engine cannot remove (its shim frozen, as in a wedged engine)
leaves a record that a later sweep finishes, while other learners' cleanups go on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

from docker.errors import ImageNotFound
import pytest
from django.conf import settings

from sandbox.gateway import cleanup
from sandbox.gateway.names import Names
from sandbox.gateway.policy import Limits
from sandbox.gateway.server import GatewayServer
from sandbox.gateway.state import TagBook

from .gateway_helpers import gateway_images, start_workspace  # noqa: F401
from .test_gateway_relay import BUSYBOX, docker

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


@contextlib.asynccontextmanager
async def learners(tmp_path, count: int):
    """``count`` learners, each with a gateway socket (served in-process) and no console container."""
    data_dir = tmp_path / "data"
    server = GatewayServer(data_dir=data_dir, limits=Limits(), record_activity=False)
    made = []
    try:
        for _ in range(count):
            sandbox_id = str(uuid.uuid4())
            socket_path = await server.serve(sandbox_id, str(uuid.uuid4().int % 10_000_000), "cleanup-test")
            link = Path(os.path.realpath("/tmp")) / f"gw-clean-{sandbox_id[:8]}.sock"
            link.symlink_to(socket_path)
            made.append((sandbox_id, str(link)))
        yield data_dir, made
    finally:
        for sandbox_id, link in made:
            Path(link).unlink(missing_ok=True)
            await server.stop(sandbox_id)
            await asyncio.to_thread(cleanup.destroy_learner_objects, sandbox_id, data_dir=data_dir, retry=False)


def shim_pid(container_id: str) -> int:
    out = subprocess.run(["pgrep", "-f", f"containerd-shim-runc-v2 .*-id {container_id}"], capture_output=True,
                         text=True, timeout=10).stdout.split()
    assert len(out) == 1, out
    return int(out[0])


async def test_the_end_of_a_sandbox_removes_its_gateway_folder_and_record(gateway_images, docker_client,
                                                                            labelled_leftovers):
    ws = await start_workspace()
    folder = Path(settings.DATA_DIR) / "gateway" / ws.id
    record = Path(settings.DATA_DIR) / "gateway-state" / f"{ws.id}.json"
    try:
        made = await ws.sh(
            f"docker tag {BUSYBOX} leaving-{ws.id[:8]}:1 && docker run -d --name web {BUSYBOX} sleep 60 && "
            f"mkdir -p app && printf 'FROM {BUSYBOX}\\nRUN echo a > /a\\nRUN echo b > /b\\n' > app/Dockerfile && "
            "docker build -q -t built:1 app", timeout=120)
        assert made.exit_code == 0, made.output
        assert folder.is_dir() and record.exists()
        built = docker_client.images.get(made.output.strip().splitlines()[-1])
        chain, parent = [], built.attrs["Parent"]
        while parent and not docker_client.images.get(parent).tags:  # the build's own layers
            chain.append(parent)
            parent = docker_client.images.get(parent).attrs["Parent"]
        assert chain, "the build left no intermediate images to check"
    finally:
        await ws.backend.destroy(ws.id)
    for image_id in [built.id, *chain]:
        with pytest.raises(ImageNotFound):
            docker_client.images.get(image_id)
    assert not folder.exists(), list(folder.iterdir())
    assert not record.exists()
    assert labelled_leftovers(ws.id) == []
    assert not any(f"leaving-{ws.id[:8]}:1" in image.tags for image in docker_client.images.list())


async def test_a_tag_record_goes_when_its_image_is_removed_elsewhere(gateway_images, docker_client, tmp_path):
    name = f"claimed-{uuid.uuid4().hex[:8]}:1"
    async with learners(tmp_path, 2) as (data_dir, [(first, first_sock), (_second, second_sock)]):
        rc, out = await docker(first_sock, "tag", BUSYBOX, name)
        assert rc == 0, out
        # Someone removes the tag outside the first learner's gateway (an instructor, a clean-up).
        docker_client.images.remove(name)
        rc, out = await docker(second_sock, "tag", BUSYBOX, name)
        assert rc != 0 and "in use by another learner" in out, out
        report = await asyncio.to_thread(cleanup.sweep, data_dir)
        assert name in report["pruned"]
        assert name not in TagBook(data_dir / "gateway-state", first).tags()
        rc, out = await docker(second_sock, "tag", BUSYBOX, name)
        assert rc == 0, out


async def test_a_container_the_engine_cannot_remove_delays_only_its_own_learner(gateway_images, docker_client,
                                                                               tmp_path):
    async with learners(tmp_path, 2) as (data_dir, [(stuck, stuck_sock), (other, other_sock)]):
        for sandbox_id, sock in ((stuck, stuck_sock), (other, other_sock)):
            rc, out = await docker(sock, "run", "-d", "--name", f"app-{sandbox_id[:8]}", BUSYBOX, "sleep", "600")
            assert rc == 0, out
        stuck_id = docker_client.containers.list(ignore_removed=True, filters={"label": f"tutorial.sandbox={stuck}"})[0].id
        shim = shim_pid(stuck_id)
        # A frozen shim: what a wedged container looks like to the engine (kill, stop and remove
        # wait on it; inspect then waits on the container's lock).
        os.kill(shim, signal.SIGSTOP)
        try:
            await asyncio.to_thread(cleanup.destroy_learner_objects, stuck, data_dir=data_dir, deadline=2, budget=6,
                                    retry=False)
            record = TagBook(data_dir / "gateway-state", stuck).load()
            assert "ended" in record and any(f"container {Names(stuck).engine(f'app-{stuck[:8]}')}" in f for f in record["failed"]), record
            assert (data_dir / "gateway" / stuck).is_dir()  # kept until the retry succeeds

            # The other learner's cleanup runs meanwhile: nothing engine-wide waits on the stuck one.
            await asyncio.to_thread(cleanup.destroy_learner_objects, other, data_dir=data_dir, deadline=10,
                                    retry=False)
            assert docker_client.containers.list(all=True, ignore_removed=True, filters={"label": f"tutorial.sandbox={other}"}) == []
            assert not (data_dir / "gateway" / other).exists()
            assert not (data_dir / "gateway-state" / f"{other}.json").exists()
        finally:
            os.kill(shim, signal.SIGCONT)
        report = await asyncio.to_thread(cleanup.sweep, data_dir, retry_after=0, deadline=30)
        assert stuck in report["retried"]
        assert docker_client.containers.list(all=True, ignore_removed=True, filters={"label": f"tutorial.sandbox={stuck}"}) == []
        assert not (data_dir / "gateway" / stuck).exists()
        assert not (data_dir / "gateway-state" / f"{stuck}.json").exists()

