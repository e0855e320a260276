"""The registry API inside a docker-workspace sandbox, through busybox `wget` against the real
registry: a learner lists their own tags and reads digests, sees only the lesson images and their
own namespace, cannot read a classmate's repository and cannot write. And a learner's `docker`
commands count as activity (the idle timer)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil

import pytest
from django.utils import timezone

from sandbox.services import get_backend
from sandbox.models import Sandbox

from .gateway_helpers import gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
API = "http://127.0.0.1:5000/v2"
HELLO = "127.0.0.1:5000/library/hello"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


async def test_a_learner_reads_their_tags_and_digests_and_nothing_of_a_classmate(gateway_images):
    a, b = await start_workspace(), await start_workspace()
    a_ns, b_ns = a.namespace.split("/", 1)[1], b.namespace.split("/", 1)[1]
    try:
        pushed = await b.sh(f"docker pull -q {HELLO} >/dev/null && docker tag {HELLO} {b.namespace}/secret:1"
                            f" && docker push {b.namespace}/secret:1 >/dev/null")
        assert pushed.exit_code == 0, pushed.output
        pushed = await a.sh(f"docker pull -q {HELLO} >/dev/null && docker tag {HELLO} {a.namespace}/hello:v1"
                            f" && docker tag {HELLO} {a.namespace}/hello:v2 && docker push -a {a.namespace}/hello >/dev/null"
                            f" && docker image inspect -f '{{{{index .RepoDigests 0}}}}' {a.namespace}/hello:v1")
        assert pushed.exit_code == 0, pushed.output
        digest = pushed.output.strip().splitlines()[-1].split("@")[1]

        tags = await a.sh(f"wget -qO- {API}/{a_ns}/hello/tags/list")
        assert tags.exit_code == 0, tags.output
        assert json.loads(tags.output) == {"name": f"{a_ns}/hello", "tags": ["v1", "v2"]}

        headers = await a.out(f"wget -S -O /dev/null --header 'Accept: {MANIFEST}' {API}/{a_ns}/hello/manifests/v1 2>&1")
        assert f"Docker-Content-Digest: {digest}" in headers

        catalog = json.loads(await a.out(f"wget -qO- {API}/_catalog"))["repositories"]
        assert f"{a_ns}/hello" in catalog and "library/hello" in catalog
        assert not [name for name in catalog if not name.startswith((f"{a_ns}/", "library/"))], catalog

        theirs = await a.sh(f"wget -qO- {API}/{b_ns}/secret/tags/list 2>&1")
        assert theirs.exit_code != 0 and "404" in theirs.output
        write = await a.sh(f"wget -qO- --post-data x {API}/{a_ns}/hello/blobs/uploads/ 2>&1")
        assert write.exit_code != 0 and "405" in write.output
        still = await b.sh(f"wget -qO- {API}/{b_ns}/secret/tags/list")
        assert json.loads(still.output)["tags"] == ["1"], "B's own view of B's repository"
    finally:
        for workspace in (a, b):
            await workspace.backend.destroy(workspace.id)


async def test_docker_commands_count_as_activity(gateway_images, owner):
    from sandbox import services

    sandbox = await services.start_sandbox(owner, "repositories", "docker", "docker")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    try:
        long_ago = timezone.now() - dt.timedelta(minutes=30)
        await Sandbox.objects.filter(pk=sandbox.pk).aupdate(last_activity_at=long_ago)
        # Straight through the backend: a check run through services would touch the row itself.
        result = await get_backend("docker").run(sandbox.engine_ref, "docker ps -q >/dev/null && echo ok", timeout=30)
        assert result.output.strip() == "ok", result.output
        for _ in range(50):
            await sandbox.arefresh_from_db()
            if sandbox.last_activity_at > long_ago:
                break
            await asyncio.sleep(0.1)
        assert sandbox.last_activity_at > long_ago + dt.timedelta(minutes=29)
    finally:
        await services.stop_sandbox(sandbox)


async def test_the_end_of_a_sandbox_deletes_its_tags_through_the_registry_api(gateway_images, settings, tmp_path):
    """Even when the registry keeps its data elsewhere than this checkout (another checkout started
    it), the cleanup deletes the learner's manifests through the API: no tag is left to pull."""
    import urllib.error
    import urllib.request

    from sandbox.gateway.cleanup import registry_repositories

    real_folder = settings.GATEWAY_REGISTRY_DIR
    settings.GATEWAY_REGISTRY_DIR = tmp_path / "not-the-registry-folder"
    a = await start_workspace()
    ns = a.namespace.split("/", 1)[1]
    try:
        pushed = await a.sh(f"docker pull -q {HELLO} >/dev/null && docker tag {HELLO} {a.namespace}/gone:1"
                            f" && docker push {a.namespace}/gone:1 >/dev/null")
        assert pushed.exit_code == 0, pushed.output
        assert f"{ns}/gone" in registry_repositories(f"{ns}/")
    finally:
        await a.backend.destroy(a.id)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:5000/v2/{ns}/gone/tags/list", timeout=10) as response:
            tags = json.load(response).get("tags")
    except urllib.error.HTTPError as exc:
        tags = f"HTTP {exc.code}"
    assert not tags or tags == "HTTP 404", tags
    # The empty repository folder is what only the folder cleanup removes; do it for the next test.
    shutil.rmtree(real_folder / "docker" / "registry" / "v2" / "repositories" / ns, ignore_errors=True)


async def test_a_learners_repositories_outlive_one_of_their_two_docker_sandboxes(gateway_images):
    """The namespace belongs to the learner: ending their "images" sandbox must not delete what
    they pushed from their "repositories" sandbox; the end of the last one does."""
    import random

    owner = random.randint(10_000_000, 20_000_000)
    pusher = await start_workspace("repositories", owner_id=owner)
    other = await start_workspace("images", owner_id=owner)
    ns = pusher.namespace.split("/", 1)[1]
    tags_url = f"{API}/{ns}/hello/tags/list"
    try:
        pushed = await pusher.sh(f"docker pull -q {HELLO} >/dev/null && docker tag {HELLO} {pusher.namespace}/hello:v1"
                                 f" && docker push {pusher.namespace}/hello:v1 >/dev/null")
        assert pushed.exit_code == 0, pushed.output
        await other.backend.destroy(other.id)
        assert json.loads(await pusher.out(f"wget -qO- {tags_url}"))["tags"] == ["v1"]
    finally:
        await other.backend.destroy(other.id)
        await pusher.backend.destroy(pusher.id)
    from sandbox.gateway.cleanup import registry_repositories

    assert registry_repositories(f"{ns}/") == []
