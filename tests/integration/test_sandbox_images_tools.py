"""The sandbox images carry bash, jq and curl, built offline from the host's Debian packages,
because imported scenarios' scripts use them; /bin/sh stays busybox, and the docker CLI still runs
on the glibc the base now holds. Built under a prefix of this test's own, so the images every other
test and the site use are not replaced.
"""

from __future__ import annotations

import docker
import pytest
from asgiref.sync import sync_to_async

from sandbox import services as sandbox_services
from sandbox.images.recipes import image_tag
from sandbox.models import Sandbox
from tests.factories import make_user

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


# A page served by busybox httpd inside the sandbox itself: sandboxes have no network but loopback.
SERVE_AND_FETCH = """
id -u
mkdir -p /tmp/www && echo 'hello from the sandbox' > /tmp/www/index.html
httpd -p 127.0.0.1:8080 -h /tmp/www
curl -sS http://127.0.0.1:8080/
curl --version | head -n 1
curl -sS https://127.0.0.1:8080/ 2>&1; echo "https exit $?"
"""


@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
async def test_curl_fetches_a_page_as_the_learner_in_a_sandbox(fresh_sandbox_images, labelled_leftovers):
    await sync_to_async(fresh_sandbox_images)("base")
    learner = await sync_to_async(make_user)("curl-learner")
    sandbox = await sandbox_services.start_sandbox(learner, "curl-in-the-base", "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    try:
        result = await sandbox_services.run_script(sandbox, SERVE_AND_FETCH, timeout=30)
        uid, page, version, *https = result.output.strip().split("\n")
        assert uid == "1000"
        assert page == "hello from the sandbox"
        assert version.startswith("curl ") and "OpenSSL" in version
        # https loads Debian's CA bundle and gets as far as the handshake, which a plain-http server
        # answers wrongly (exit 35); without a bundle curl stops before it (exit 77).
        assert https[-1] == "https exit 35", https
    finally:
        await sandbox_services.stop_sandbox(sandbox)
        assert await sync_to_async(labelled_leftovers)(sandbox.id) == []
