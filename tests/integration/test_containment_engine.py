"""Attacks on the engine itself from a learner container made through the gateway: a fork bomb,
a memory bomb, a `yes` flood with one attached reader that stops reading and one killed
mid-stream. None of them may cost the container its containerd shim or make the engine stop
answering about it (a container whose shim hung once made `docker inspect`, every prune and image
deletes hang for the whole class). The engine must still remove it on the learner's
`docker rm -f`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from sandbox.gateway.cleanup import destroy_learner_objects
from sandbox.gateway.policy import Limits
from sandbox.gateway.proxy import ConnectionLimits
from sandbox.gateway.server import GatewayServer

from .gateway_helpers import gateway_images  # noqa: F401
from .test_containment import forks_refused, pids_cgroup_dir
from .test_gateway_cleanup import shim_pid
from .test_gateway_relay import BUSYBOX, docker

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

# Generous: a healthy engine answers in well under a second; a wedged one never does.
ANSWER_DEADLINE = 20


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


async def engine_answers_about(docker_client, container_id: str) -> dict:
    return await asyncio.wait_for(asyncio.to_thread(docker_client.api.inspect_container, container_id), ANSWER_DEADLINE)


async def test_bombs_and_floods_leave_the_shim_alive_and_the_engine_answering(gateway_images, docker_client,
                                                                             labelled_leftovers, tmp_path):
    sandbox_id = str(uuid.uuid4())
    data_dir = tmp_path / "data"
    # A suspended `docker attach` loses its stream after the stall timeout (then `rm -f` proceeds).
    server = GatewayServer(data_dir=data_dir, limits=Limits(), record_activity=False,
                           connections=ConnectionLimits(stall_timeout=10))
    socket_path = await server.serve(sandbox_id, "515151", "containment-test")
    link = Path(os.path.realpath("/tmp")) / f"gw-contain-{sandbox_id[:8]}.sock"
    link.symlink_to(socket_path)
    env = {**os.environ, "DOCKER_HOST": f"unix://{link}"}
    readers: list[subprocess.Popen] = []
    try:
        rc, out = await docker(str(link), "run", "-d", "--name", "target", BUSYBOX, "sleep", "600")
        assert rc == 0, out
        target = out.strip().splitlines()[-1]
        shim = shim_pid(target)
        pids_dir = pids_cgroup_dir(target)
        limit = int((pids_dir / "pids.max").read_text())
        assert limit == Limits().pids_default

        # Fork bomb: stops at the pids limit; the shim (outside the container's cgroup) lives.
        rc, out = await docker(str(link), "exec", "-d", "target", "sh", "-c", "b() { b | b & }; b")
        assert rc == 0, out
        for _ in range(100):
            if forks_refused(pids_dir) > 0:
                break
            await asyncio.sleep(0.05)
        assert forks_refused(pids_dir) > 0 and int((pids_dir / "pids.current").read_text()) <= limit
        assert alive(shim)
        assert (await engine_answers_about(docker_client, target))["State"]["Running"]

        # Memory bomb in a second container (the first one's pids are spent): OOM-killed inside.
        rc, out = await docker(str(link), "run", "-d", "--name", "hog", BUSYBOX, "sh", "-c", "tail /dev/zero")
        assert rc == 0, out
        hog = out.strip().splitlines()[-1]
        hog_shim = shim_pid(hog)
        state = (await engine_answers_about(docker_client, hog))["State"]
        for _ in range(200):
            if not state["Running"]:
                break
            await asyncio.sleep(0.1)
            state = (await engine_answers_about(docker_client, hog))["State"]
        assert state["OOMKilled"] and state["ExitCode"] == 137, state

        # `yes` flood with two attached readers: one stops reading, one is killed mid-stream.
        rc, out = await docker(str(link), "run", "-d", "--name", "flood", BUSYBOX, "yes")
        assert rc == 0, out
        flood = out.strip().splitlines()[-1]
        flood_shim = shim_pid(flood)
        for _ in range(2):
            readers.append(subprocess.Popen(["docker", "attach", "--no-stdin", "flood"], env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
        await asyncio.to_thread(readers[0].stdout.read, 65536)  # streaming
        await asyncio.to_thread(readers[1].stdout.read, 65536)
        readers[0].send_signal(signal.SIGSTOP)  # its socket fills and stays full
        readers[1].kill()
        for _ in range(3):
            await asyncio.sleep(1)
            assert alive(flood_shim) and alive(shim)
            assert (await engine_answers_about(docker_client, flood))["State"]["Running"]
        rc, out = await asyncio.wait_for(docker(str(link), "logs", "--tail", "1", "flood"), ANSWER_DEADLINE)
        assert rc == 0 and out.strip().endswith("y"), out[-200:]

        # The learner's own rm -f ends all of it, and the shims with it.
        rc, out = await asyncio.wait_for(docker(str(link), "rm", "-f", "target", "hog", "flood"), ANSWER_DEADLINE * 3)
        assert rc == 0, out
        for pid in (shim, hog_shim, flood_shim):
            for _ in range(100):
                if not alive(pid):
                    break
                await asyncio.sleep(0.1)
            assert not alive(pid)
    finally:
        for reader in readers:
            if reader.poll() is None:
                reader.send_signal(signal.SIGCONT)
                reader.kill()
            reader.wait(10)
        link.unlink(missing_ok=True)
        await server.stop(sandbox_id)
        await asyncio.to_thread(destroy_learner_objects, sandbox_id, data_dir=data_dir, retry=False)
    assert labelled_leftovers(sandbox_id) == []
