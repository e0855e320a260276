"""The sandbox images carry bash and jq, built offline from the host's Debian packages, because
imported scenarios' scripts use them; /bin/sh stays busybox, and the docker CLI still runs on the
glibc the base now holds. Built under a prefix of this test's own, so the images every other test
and the site use are not replaced.
"""

from __future__ import annotations

import docker
import pytest

from sandbox.images.recipes import image_tag

pytestmark = pytest.mark.engine


def _run(client: docker.DockerClient, image: str, script: str) -> str:
    return client.containers.run(
        image, ["sh", "-c", script], network_mode="none", remove=True, cap_drop=["ALL"], user="1000:1000",
    ).decode()


@pytest.mark.timeout(300)
def test_bash_and_jq_run_in_the_base_and_the_docker_cli_still_runs(docker_client, fresh_sandbox_images):
    fresh_sandbox_images("base", "docker")
    base, with_docker = image_tag("base"), image_tag("docker")

    # bash-only syntax: an associative array and [[ ]].
    out = _run(docker_client, base, "bash -c 'declare -A seen=([web]=2); [[ ${seen[web]} == 2 ]] && echo bash ${BASH_VERSINFO[0]}'")
    assert out.strip() == "bash 5"
    out = _run(docker_client, base, """echo '{"items":[{"name":"web"},{"name":"db"}]}' | jq -r '.items[].name'""")
    assert out.split() == ["web", "db"]
    assert _run(docker_client, base, "readlink /bin/sh").strip() == "/bin/busybox"

    out = _run(docker_client, with_docker, "docker --version; bash -c 'echo $((6*7))'; echo '[1,2]' | jq length")
    assert out.startswith("Docker version")
    assert out.split("\n")[1:3] == ["42", "2"]
