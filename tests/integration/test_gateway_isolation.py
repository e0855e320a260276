"""Two learners at once through their own gateways, the lesson commands (run -it included), a
gateway restart, and the end of a sandbox leaving nothing on the engine or in the registry."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest
from django.conf import settings

from sandbox.gateway.names import Names
from sandbox.gateway.server import ensure_gateway, release_gateway

from .gateway_helpers import blocks, gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
WEB = "127.0.0.1:5000/library/web"


def catalog() -> list[str]:
    with urllib.request.urlopen(f"http://{settings.GATEWAY_REGISTRY}/v2/_catalog", timeout=10) as response:
        return json.load(response)["repositories"]


async def test_two_learners_cannot_touch_each_other(gateway_images, docker_client):
    a, b = await start_workspace(), await start_workspace()
    try:
        since = int(time.time()) - 1
        setup = await b.sh(
            f"docker run -d --name bweb {WEB} && docker volume create bvol && docker network create bnet"
            " && docker run --rm -v bvol:/v 127.0.0.1:5000/library/busybox sh -c 'echo secret-of-b > /v/f'"
            " && mkdir img && printf 'FROM 127.0.0.1:5000/library/busybox\\nRUN echo b > /b\\n' > img/Dockerfile"
            f" && docker build -q -t bimg:1 img && docker tag bimg:1 {b.namespace}/bimg:1 && docker push {b.namespace}/bimg:1"
            " && docker inspect -f '{{.Id}}' bweb")
        assert setup.exit_code == 0, setup.output
        bweb_id = setup.output.strip().splitlines()[-1]
        await a.sh(f"docker run -d --name aweb {WEB}")
        attempts = {
            "ps": "docker ps -a --no-trunc",
            "inspect": "docker inspect bweb",
            "inspect by id": f"docker inspect {bweb_id}",
            "logs": "docker logs bweb",
            "exec": f"docker exec {bweb_id} true",
            "cp": "docker cp bweb:/www/index.html .",
            "stop": "docker stop bweb",
            "rm": f"docker rm -f {bweb_id[:12]}",
            "prune": "docker container prune -f && docker volume prune -f && docker network prune -f && docker image prune -af",
            "network": f"docker run --rm --network bnet {WEB} true",
            "network inspect": "docker network inspect bnet",
            "network connect": "docker network connect bnet aweb",
            "volumes": "docker volume ls -q",
            "volume inspect": "docker volume inspect bvol",
            # A's own bvol (names are per learner), never B's, by B's name or the engine's.
            "volume": "docker run --rm -v bvol:/x 127.0.0.1:5000/library/busybox cat /x/f",
            "volume scoped": f"docker run --rm -v {Names(b.id).engine('bvol')}:/x 127.0.0.1:5000/library/busybox cat /x/f",
            "image": "docker image inspect bimg:1",
            "image run": "docker run --rm bimg:1 true",
            "images": "docker images",
            "push": f"docker tag {WEB} {b.namespace}/evil:1; docker push {b.namespace}/bimg:1",
            "pull": f"docker pull {b.namespace}/bimg:1",
            "tag taken": f"docker tag {WEB} bimg:1",
            # The engine resolves FROM and COPY --from against every image it holds.
            "build from": "mkdir -p fa && printf 'FROM bimg:1\\nRUN cat /b\\n' > fa/Dockerfile && docker build -q fa",
            "build copy from": "mkdir -p fc && printf 'FROM scratch\\nCOPY --from=bimg:1 /b /b\\n' > fc/Dockerfile && docker build -q fc",
            "build from pull": f"mkdir -p fp && printf 'FROM {b.namespace}/bimg:1\\n' > fp/Dockerfile && docker build -q fp",
            "build from arg": "mkdir -p fg && printf 'ARG B=scratch\\nFROM $B\\n' > fg/Dockerfile && docker build -q --build-arg B=bimg:1 fg",
            "build ok": f"mkdir -p fo && printf 'FROM {WEB} AS w\\nFROM w\\nRUN true\\n' > fo/Dockerfile && docker build -q fo",
            "rmi shared": f"docker rmi -f {WEB}; docker rmi -f 127.0.0.1:5000/library/busybox",
            "events": f"docker events --since {since} --until {int(time.time()) + 1} --format '{{{{.Actor.ID}}}}'",
        }
        found = blocks(await a.out("; ".join(f'echo "== {k}"; {v} 2>&1; echo "rc=$?"' for k, v in attempts.items()),
                                   timeout=150))
        for name in ("inspect", "inspect by id", "logs", "exec", "cp", "stop", "rm"):
            assert "no such" in found[name].lower(), f"{name}: {found[name]}"
            assert "rc=0" not in found[name] or name == "rm", f"{name}: {found[name]}"  # rm -f ignores not-found
        for name in ("network", "network inspect", "network connect"):
            text = found[name].lower()
            assert ("not found" in text or "no such" in text) and "rc=0" not in text, f"{name}: {found[name]}"
        for name in ("volume", "volume scoped"):
            assert "secret-of-b" not in found[name] and "No such file" in found[name], f"{name}: {found[name]}"
        assert "no such volume" in found["volume inspect"].lower()
        assert "bvol" not in found["volumes"]
        assert "No such image" in found["image"] and "rc=0" not in found["image run"]
        assert "bimg" not in found["images"] and "library/web" in found["images"]
        assert "own namespace" in found["push"] and "your own" in found["pull"] and "rc=0" not in found["pull"]
        assert "in use by another learner" in found["tag taken"]
        for name in ("build from", "build copy from", "build from pull", "build from arg"):
            assert "not an image of yours" in found[name] and "rc=0" not in found[name], f"{name}: {found[name]}"
        assert "sha256:" in found["build ok"] and "rc=0" in found["build ok"], found["build ok"]
        assert found["rmi shared"].count("shared lesson image") == 2
        assert "bweb" not in found["ps"] and bweb_id not in found["ps"] and "aweb" in found["ps"]
        assert bweb_id not in found["events"] and found["events"].strip() != "rc=0"
        # B's things survived A's attempts, including A's prunes.
        still = await b.out("docker ps -q --filter name=bweb; docker volume ls -q; docker network ls --format '{{.Name}}';"
                            " docker images -q bimg:1; docker run --rm bimg:1 cat /b")
        assert "bvol" in still and "bnet" in still and still.strip().endswith("b"), still
        assert docker_client.images.get("127.0.0.1:5000/library/web")
    finally:
        await a.backend.destroy(a.id)
        await b.backend.destroy(b.id)


async def console_until(console, needle: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = asyncio.get_running_loop().time() + timeout
    while needle not in seen:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"never saw {needle!r} in {seen[-2000:]!r}"
        try:
            chunk = await asyncio.wait_for(console.read(), remaining)
        except asyncio.TimeoutError:
            raise AssertionError(f"never saw {needle!r} in {seen[-2000:]!r}") from None
        assert chunk, f"console ended before {needle!r}: {seen[-2000:]!r}"
        seen += chunk
    return seen


async def _drain(console, seconds: float = 1.0) -> bytes:
    seen = b""
    try:
        while True:
            seen += await asyncio.wait_for(console.read(), seconds)
    except asyncio.TimeoutError:
        return seen


async def test_lesson_commands_work_through_the_gateway(gateway_images):
    ws = await start_workspace()
    try:
        script = (
            "docker pull 127.0.0.1:5000/library/hello && docker images && docker image inspect -f '{{.Id}}' "
            "127.0.0.1:5000/library/hello && docker history 127.0.0.1:5000/library/hello && "
            "mkdir app && printf 'FROM 127.0.0.1:5000/library/busybox\\nCMD echo mine\\n' > app/Dockerfile && "
            "docker build -t app:1 app && docker tag app:1 app:2 && docker run --rm app:2 && docker rmi app:2 && "
            f"docker run -d --name web -e GREETING=hi -p 127.0.0.1::8080 -m 64m --cpus 0.5 --restart unless-stopped {WEB} && "
            "docker ps && docker logs web && docker exec web sh -c 'echo $GREETING' && docker port web && "
            "docker stop web && docker start web && docker inspect -f '{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.Memory}}' web && "
            "docker cp web:/www/index.html ./page.html && docker cp page.html web:/tmp/ && docker exec web cat /tmp/page.html && "
            "docker rm -f web && docker tag app:1 $(registry)/app:1 && docker push $(registry)/app:1 && "
            "docker rmi $(registry)/app:1 && docker pull $(registry)/app:1 && echo ALL-DONE"
        )
        result = await ws.sh(script, timeout=180)
        assert result.exit_code == 0 and "ALL-DONE" in result.output, result.output
        assert "127.0.0.1:" in result.output and "unless-stopped 67108864" in result.output
        assert "mine" in result.output and "Hello from the web lesson image" in result.output

        # `docker run -it` and `logs -f` in the learner's own TTY console.
        console = await ws.backend.open_console(ws.ref, replay=False)
        try:
            await console.write(b"docker run -it --rm 127.0.0.1:5000/library/busybox sh\r")
            await console_until(console, b"# ")
            await console.write(b"echo $((6*7))inside\r")
            await console_until(console, b"42inside")
            await console.write(b"exit\r")
            back = await console_until(console, b"$ ")
            if b"\x1b[6n" in back or b"\x1b[6n" in await _drain(console):
                await console.write(b"\x1b[1;1R")  # busybox ash asks where the cursor is: answer like xterm.js
            await console.write(b"docker run -d --name ticker 127.0.0.1:5000/library/busybox sh -c 'while :; do echo tick; sleep 0.2; done'"
                                b" && timeout 3 docker logs -f ticker | head -3 && echo FOLLO''WED\r")
            await console_until(console, b"FOLLOWED")
        finally:
            await console.close()

        # A gateway restart renames a fresh socket into the mounted folder: the sandbox keeps working.
        await release_gateway(ws.id)
        assert (await ws.sh("docker ps")).exit_code != 0
        await ensure_gateway(ws.id, ws.spec.owner_id, ws.spec.lesson)
        assert "ticker" in await ws.out("docker ps -a"), await ws.out("docker ps -a")
    finally:
        await ws.backend.destroy(ws.id)


async def test_the_end_of_a_sandbox_removes_everything_its_learner_made(gateway_images, docker_client, labelled_leftovers):
    ws = await start_workspace()
    made = await ws.sh(
        f"docker run -d --name keep-{ws.id[:8]} {WEB} && docker volume create vol1 && docker network create net1 && "
        "mkdir app && printf 'FROM 127.0.0.1:5000/library/busybox\\nRUN touch /x\\n' > app/Dockerfile && "
        f"docker build -q -t mine:1 app && docker tag {WEB} myweb:1 && docker tag mine:1 $(registry)/mine:1 && "
        "docker push $(registry)/mine:1 && echo MADE")
    if "MADE" not in made.output:
        await ws.backend.destroy(ws.id)
    assert "MADE" in made.output, made.output
    namespace = ws.namespace.split("/", 1)[1]
    assert f"{namespace}/mine" in catalog()
    await ws.backend.destroy(ws.id)
    assert labelled_leftovers(ws.id) == []
    assert docker_client.images.list(filters={"label": f"tutorial.sandbox={ws.id}"}) == []
    tags = {t for i in docker_client.images.list() for t in i.tags}
    assert "myweb:1" not in tags and "mine:1" not in tags
    assert not [r for r in catalog() if r.startswith(f"{namespace}/")]
    assert "127.0.0.1:5000/library/web:latest" in tags  # the shared lesson image stays
