"""`docker container|image|network|volume prune` from a learner's sandbox, through the real CLI,
the in-process gateway and the real engine: the gateway prunes the learner's own objects one by
one (never an engine-wide prune) and answers in the engine's shape, so the CLI prints what it
deleted and the space reclaimed; a classmate's stopped container is left alone."""

from __future__ import annotations

import pytest

from .gateway_helpers import blocks, gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
WEB = "127.0.0.1:5000/library/web"


async def test_a_learners_prunes_remove_their_own_objects_and_the_cli_prints_them(gateway_images, docker_client):
    a, b = await start_workspace(), await start_workspace()
    try:
        setup = await b.sh(f"docker create --name bstopped {WEB} true && docker inspect -f '{{{{.Id}}}}' bstopped")
        assert setup.exit_code == 0, setup.output
        b_id = setup.output.strip().splitlines()[-1]
        setup = await a.sh(
            f"docker run --name astopped {WEB} true && docker run -d --name arunning {WEB}"
            " && docker network create anet && docker volume create avol"
            " && mkdir img && printf 'FROM 127.0.0.1:5000/library/busybox\\nRUN echo a > /a\\n' > img/Dockerfile"
            " && docker build -q img && docker inspect -f '{{.Id}}' astopped", timeout=150)
        assert setup.exit_code == 0, setup.output
        a_id = setup.output.strip().splitlines()[-1]
        steps = {
            "containers": "docker container prune -f",
            "images": "docker image prune -f",
            "networks": "docker network prune -f",
            "volumes": "docker volume prune -f",
            "left": "docker ps -a --format '{{.Names}}'; docker network ls --format '{{.Name}}'; docker volume ls -q",
        }
        found = blocks(await a.out("; ".join(f'echo "== {k}"; {v} 2>&1; echo "rc=$?"' for k, v in steps.items()),
                                   timeout=150))
        assert "Deleted Containers:" in found["containers"] and a_id in found["containers"], found["containers"]
        assert "Total reclaimed space" in found["containers"] and "rc=0" in found["containers"]
        assert "Deleted Images:" in found["images"] and "deleted: sha256:" in found["images"], found["images"]
        assert "Total reclaimed space" in found["images"] and "rc=0" in found["images"]
        assert "Deleted Networks:" in found["networks"] and "anet" in found["networks"], found["networks"]
        assert "Deleted Volumes:" in found["volumes"] and "avol" in found["volumes"], found["volumes"]
        left = found["left"].split()
        assert "arunning" in left and "astopped" not in left and "anet" not in left and "avol" not in left, left
        # The classmate's stopped container survived, on the engine itself.
        assert docker_client.containers.get(b_id).status == "created"
    finally:
        await a.backend.destroy(a.id)
        await b.backend.destroy(b.id)
