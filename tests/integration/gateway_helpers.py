"""Shared set-up for the gateway integration tests: real docker-workspace sandboxes (the real docker
CLI inside, the in-process gateway, the real engine) and the seeded classroom registry."""

from __future__ import annotations

import asyncio
import random
import subprocess
import uuid
from pathlib import Path

import docker
import pytest
from django.conf import settings
from django.core.management import call_command

from sandbox.backends.base import SandboxSpec
from sandbox.backends.docker import DockerBackend
from sandbox.gateway.server import short_path

ROOT = Path(__file__).resolve().parents[2]


def ensure_docker_images(client: docker.DockerClient) -> None:
    from sandbox.images.build import build_image, build_order
    from sandbox.images.recipes import image_tag

    for name in build_order(["docker", "lesson-hello", "lesson-web"]):
        try:
            client.images.get(image_tag(name))
        except docker.errors.ImageNotFound:
            build_image(client, name)


def ensure_registry() -> None:
    subprocess.run([str(ROOT / "scripts" / "start-registry.sh")], check=True, capture_output=True, timeout=60)
    call_command("seed_registry", verbosity=0)


class Workspace:
    """One learner's docker-workspace sandbox."""

    def __init__(self, backend: DockerBackend, spec: SandboxSpec, ref: str):
        self.backend, self.spec, self.ref = backend, spec, ref
        self.id = spec.sandbox_id
        self.namespace = f"{settings.GATEWAY_REGISTRY}/learner-{spec.owner_id}"

    async def sh(self, script: str, timeout: float = 90):
        return await self.backend.run(self.ref, script, timeout=timeout)

    async def out(self, script: str, timeout: float = 90) -> str:
        return (await self.sh(script, timeout)).output

    @property
    def socket(self) -> Path:
        return Path(settings.DATA_DIR) / "gateway" / self.id / "docker.sock"


async def start_workspace(lesson: str = "gateway-test", owner_id: int | None = None) -> Workspace:
    backend = DockerBackend()
    spec = SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=owner_id or random.randint(10_000, 10_000_000),
                       owner_name="learner", lesson=lesson, workspace="docker", image="tutorial/docker:latest")
    ref = await backend.create(spec)
    return Workspace(backend, spec, ref)


def blocks(output: str) -> dict[str, str]:
    """Split output printed as `== name` headers into {name: text}."""
    found, name = {}, None
    for line in output.splitlines():
        if line.startswith("== "):
            name = line[3:].strip()
            found[name] = ""
        elif name:
            found[name] += line + "\n"
    return found


@pytest.fixture(scope="session")
def gateway_images(docker_client):
    ensure_docker_images(docker_client)
    ensure_registry()


async def exchange(socket_path, wire: bytes, timeout: float = 30) -> bytes:
    """Send ``wire`` (and nothing more) on a fresh gateway connection; read until the gateway closes it."""
    with short_path(socket_path) as path:
        reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(wire)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])
