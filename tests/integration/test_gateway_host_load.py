"""Load a learner could put on the host outside their own cgroup, through the real docker CLI in a
real sandbox: every published port is a docker-proxy process on the host, every healthcheck probe
an exec the engine runs. Both are bounded by the gateway's policy."""

from __future__ import annotations

import psutil
import pytest

from sandbox.gateway.names import Names

from .gateway_helpers import blocks, gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

BUSYBOX = "127.0.0.1:5000/library/busybox"
SECOND = 1_000_000_000


def learner_containers(docker_client, ws) -> list:
    label = {"label": [f"tutorial.sandbox={ws.id}", "tutorial.gateway=learner"]}
    return docker_client.containers.list(all=True, ignore_removed=True, filters=label)


def docker_proxies() -> int:
    return sum(1 for p in psutil.process_iter(["name"]) if p.info["name"] == "docker-proxy")


async def test_thousands_of_published_ports_and_port_ranges_are_refused(gateway_images, docker_client):
    ws = await start_workspace()
    proxies_before = docker_proxies()
    try:
        attacks = {
            # The CLI expands a range into one binding per port: 2000 docker-proxy processes.
            "high range": f"docker run -d -p 20000-21999:1-2000 {BUSYBOX} sleep 30",
            "range from 1": f"docker run -d -p 1-2000:1-2000 {BUSYBOX} sleep 30",
            "eleven ports": f"docker run -d {' '.join(f'-p 127.0.0.1::{80 + i}' for i in range(11))} {BUSYBOX} sleep 30",
        }
        found = blocks(await ws.out("; ".join(f'echo "== {name}"; {cmd} 2>&1; echo "rc=$?"'
                                              for name, cmd in attacks.items()), timeout=120))
        for name in ("high range", "range from 1"):
            assert "denied by classroom policy: a container may publish at most 10 ports, not 2000" in found[name], found[name]
        assert "at most 10 ports, not 11" in found["eleven ports"], found["eleven ports"]
        assert all("rc=0" not in text for text in found.values()), found
        assert learner_containers(docker_client, ws) == []
        assert docker_proxies() <= proxies_before  # nothing of this learner's is listening
    finally:
        await ws.backend.destroy(ws.id)


async def test_a_learner_publishes_at_most_twenty_ports_over_all_containers(gateway_images, docker_client):
    ws = await start_workspace()
    try:
        ten = " ".join(f"-p 127.0.0.1::{80 + i}" for i in range(10))
        script = (
            f'echo "== first"; docker create --name first {ten} {BUSYBOX} sleep 30 2>&1; echo "rc=$?"; '
            f'echo "== second"; docker create --name second {ten} {BUSYBOX} sleep 30 2>&1; echo "rc=$?"; '
            f'echo "== third"; docker create --name third -p 127.0.0.1::80 {BUSYBOX} sleep 30 2>&1; echo "rc=$?"; '
            f'echo "== unpublished"; docker create --name quiet {BUSYBOX} sleep 30 2>&1; echo "rc=$?"; '
            f'echo "== after rm"; docker rm first >/dev/null; docker create --name third -p 127.0.0.1::80 {BUSYBOX} sleep 30 2>&1; echo "rc=$?"'
        )
        found = blocks(await ws.out(script, timeout=120))
        assert "rc=0" in found["first"] and "rc=0" in found["second"], found
        assert "at most 20 ports in all (20 already published)" in found["third"], found["third"]
        assert "rc=0" in found["unpublished"], found["unpublished"]
        assert "rc=0" in found["after rm"], found["after rm"]
        names = sorted(c.name for c in learner_containers(docker_client, ws))
        assert names == [Names(ws.id).engine(n) for n in ("quiet", "second", "third")]  # the engine's names
    finally:
        await ws.backend.destroy(ws.id)


async def test_a_healthcheck_every_millisecond_is_refused_or_clamped(gateway_images, docker_client):
    ws = await start_workspace()
    try:
        refused = await ws.sh(f"docker run -d --health-cmd=true --health-interval=1ms {BUSYBOX} sleep 30 2>&1")
        assert refused.exit_code != 0
        assert "denied by classroom policy: --health-interval must be between 1s and 3600s" in refused.output, refused.output
        timeout = await ws.sh(f"docker run -d --health-cmd=true --health-timeout=1ms {BUSYBOX} sleep 30 2>&1")
        assert "--health-timeout must be between 1s" in timeout.output, timeout.output
        assert learner_containers(docker_client, ws) == []

        # The classic builder accepts HEALTHCHECK --interval=1ms: a container of that image runs
        # its probe at most once a second all the same.
        built = await ws.sh(
            f"mkdir -p hc && printf 'FROM {BUSYBOX}\\nHEALTHCHECK --interval=1ms --timeout=1ms CMD true\\n' > hc/Dockerfile"
            " && docker build -q -t fastcheck hc && docker run -d --name probed fastcheck sleep 30 2>&1", timeout=120)
        assert built.exit_code == 0, built.output
        (container,) = learner_containers(docker_client, ws)
        health = container.attrs["Config"]["Healthcheck"]
        assert health["Interval"] >= SECOND and health["Timeout"] >= SECOND, health
    finally:
        await ws.backend.destroy(ws.id)
