"""The learner's token renewed on a REAL cluster (``TUTORIAL_TEST_KUBECONFIG``; under ``CI`` a
missing cluster fails): a new token is written over the toolbox's kubeconfig while a shell is
open in it, the shell carries on with it, and a token the API server refuses makes a check say
in words what happened."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
import yaml

from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import Limits, SandboxSpec
from sandbox.backends.kubernetes import ANNOTATION_TOKEN_EXPIRES, ANNOTATION_TOKEN_ISSUED, CREDENTIALS_EXPIRED, KubernetesBackend
from tests.kubernetes.real_cluster import build_toolbox_image, point_settings_at_cluster

pytestmark = [
    pytest.mark.engine,
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def toolbox_image(docker_client) -> str:
    return build_toolbox_image(docker_client)


@pytest.fixture
def real_backend(settings, docker_client):
    point_settings_at_cluster(settings)
    settings.KUBERNETES_TOKEN_SECONDS = km.MIN_TOKEN_SECONDS
    return KubernetesBackend()


def spec_for(image: str) -> SandboxSpec:
    return SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=1, owner_name="credentials", lesson="pods",
                       workspace="kubernetes", image=image, limits=Limits())


async def sh(backend, ref, script, timeout=60):
    result = await backend.run(ref, script, timeout=timeout)
    return result.exit_code, result.output


async def token_in_toolbox(backend, ref) -> str:
    code, out = await sh(backend, ref, 'cat "${KUBECONFIG:-$HOME/.kube/config}"')
    assert code == 0, out
    return yaml.safe_load(out)["users"][0]["user"]["token"]


async def annotate(backend, namespace: str, annotations: dict) -> None:
    from kubernetes import client

    core = client.CoreV1Api(backend.api_client())
    await asyncio.to_thread(core.patch_namespace, namespace, {"metadata": {"annotations": annotations}})


async def typed(console, command: str, marker: str) -> str:
    """Type ``command`` into the open shell; what it printed up to ``marker``."""
    await console.write(f"{command}; echo {marker}-$((6*7))\n".encode())
    seen = b""
    async with asyncio.timeout(60):
        while f"{marker}-42".encode() not in seen:
            chunk = await console.read()
            assert chunk, seen
            seen += chunk
    return seen.decode(errors="replace")


async def test_a_due_token_is_renewed_under_an_open_shell_and_a_refused_one_is_explained(real_backend, toolbox_image):
    backend = real_backend
    spec = spec_for(toolbox_image)
    namespace = km.namespace_name(spec.sandbox_id)
    ref = await backend.create(spec)
    try:
        # Fresh: not due; due once less than a third of its ten minutes is left.
        assert not await backend.credentials_due(spec.sandbox_id)
        now = dt.datetime.now(dt.timezone.utc)
        assert not await backend.credentials_due(spec.sandbox_id, now + dt.timedelta(seconds=300))
        assert await backend.credentials_due(spec.sandbox_id, now + dt.timedelta(seconds=420))
        old_token = await token_in_toolbox(backend, ref)

        # The learner has a shell open in the console the whole time.
        console = await backend.open_console(ref, replay=False)
        try:
            out = await typed(console, "kubectl get pods >/dev/null 2>&1; echo before=$?", "one")
            assert "before=0" in out, out

            # As after hours with the cluster down: the recorded expiry is in the past.
            past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
            await annotate(backend, namespace, {ANNOTATION_TOKEN_ISSUED: (past - dt.timedelta(hours=4)).isoformat(),
                                                ANNOTATION_TOKEN_EXPIRES: past.isoformat()})
            assert await backend.credentials_due(spec.sandbox_id)
            # Unreadable or missing annotations count as due too.
            await annotate(backend, namespace, {ANNOTATION_TOKEN_EXPIRES: "not a time"})
            assert await backend.credentials_due(spec.sandbox_id)
            await annotate(backend, namespace, {ANNOTATION_TOKEN_ISSUED: None, ANNOTATION_TOKEN_EXPIRES: None})
            assert await backend.credentials_due(spec.sandbox_id)

            await backend.refresh_credentials(spec.sandbox_id, ref)

            new_token = await token_in_toolbox(backend, ref)
            assert new_token and new_token != old_token
            assert not await backend.credentials_due(spec.sandbox_id)
            code, out = await sh(backend, ref, "kubectl get pods")
            assert code == 0, out
            # The shell that was open before the renewal works with the new file.
            out = await typed(console, "kubectl get pods >/dev/null 2>&1; echo after=$?", "two")
            assert "after=0" in out, out
        finally:
            await console.close()

        # A token the API server refuses (expired, say): the check says so in words.
        code, out = await sh(backend, ref, 'sed "s/token: .*/token: garbage/" "${KUBECONFIG:-$HOME/.kube/config}" > "$HOME/refused" '
                                           '&& KUBECONFIG="$HOME/refused" kubectl get pods')
        assert code != 0 and "Unauthorized" in out and CREDENTIALS_EXPIRED in out, out
        # Any other failure is left as kubectl said it.
        code, out = await sh(backend, ref, "kubectl get pods -n kube-system")
        assert code != 0 and "forbidden" in out.lower() and CREDENTIALS_EXPIRED not in out, out
    finally:
        await backend.destroy(spec.sandbox_id)


async def test_renewal_refuses_a_console_of_another_sandbox(real_backend, toolbox_image):
    from sandbox.backends.base import BackendError

    backend = real_backend
    mine, theirs = spec_for(toolbox_image), spec_for(toolbox_image)
    my_ref = await backend.create(mine)
    their_ref = await backend.create(theirs)
    try:
        their_token = await token_in_toolbox(backend, their_ref)
        with pytest.raises(BackendError, match="is not the console of sandbox"):
            await backend.refresh_credentials(mine.sandbox_id, their_ref)
        assert await token_in_toolbox(backend, their_ref) == their_token
        assert my_ref
    finally:
        await backend.destroy(mine.sandbox_id)
        await backend.destroy(theirs.sandbox_id)
