"""Faults of the local cluster under live sandboxes: the API server restarted under an open
console, the kubelet restarted under running pods, a namespace stuck terminating.

These restart parts of the cluster the whole suite shares, so they wait for each restarted part
to be back before they end. They need this machine's local cluster (not kind or a managed one).
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from cluster.control import Cluster
from cluster.layout import Layout
from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import BackendError, EngineState, EngineUnavailable, Limits, SandboxSpec
from sandbox.backends.kubernetes import KubernetesBackend
from tests.kubernetes.real_cluster import KUBECONFIG, point_settings_at_cluster

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

POD = """apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: main
      image: localhost:5000/tutorial/base:latest
      command: ["sleep", "3600"]
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""


@pytest.fixture
def local_cluster():
    layout = Layout.from_environment()
    if not KUBECONFIG or layout.admin_kubeconfig.resolve() != __import__("pathlib").Path(KUBECONFIG).resolve():
        pytest.fail(f"these tests restart parts of this machine's local cluster; TUTORIAL_TEST_KUBECONFIG must be "
                    f"{layout.admin_kubeconfig} (it is {KUBECONFIG or 'not set'})")
    cluster = Cluster(layout, progress=lambda message: None)
    yield cluster
    # Whatever a test did, the shared cluster is whole again afterwards.
    cluster.up()


@pytest.fixture
def backend(settings, docker_client):
    point_settings_at_cluster(settings)
    return KubernetesBackend()


def new_spec() -> SandboxSpec:
    from sandbox.services import image_tag

    return SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=1, owner_name="faults", lesson="pods",
                       workspace="kubernetes", image=image_tag("toolbox"), limits=Limits())


async def sh(backend, ref, script, timeout=60):
    result = await backend.run(ref, script, timeout=timeout)
    return result.exit_code, result.output


async def read_until(console, marker: bytes, seconds: float = 30) -> bytes:
    seen = b""
    async with asyncio.timeout(seconds):
        while marker not in seen:
            chunk = await console.read()
            assert chunk, seen
            seen += chunk
    return seen


async def test_an_api_server_restart_leaves_open_consoles_working(local_cluster, backend):
    spec = new_spec()
    ref = await backend.create(spec)
    try:
        console = await backend.open_console(ref, replay=False)
        restart = asyncio.create_task(asyncio.to_thread(local_cluster.restart, "kube-apiserver"))
        # While it is down the backend says so in words, and never takes the sandbox for gone
        # (the reaper would remove a learner's work).
        outage_seen = False
        for _ in range(100):
            try:
                state = await backend.status(ref)
                assert state == EngineState.RUNNING
            except EngineUnavailable as exc:
                assert "does not answer" in str(exc)
                outage_seen = True
            if restart.done():
                break
            await asyncio.sleep(0.1)
        await restart
        assert outage_seen, "the API server never looked down: the restart did not happen"
        # The same shell, after the restart: kubectl works again.
        await console.write(b"kubectl get pods -o name; echo rc=$?-$((40+2))\n")
        seen = await read_until(console, b"-42", 60)
        assert b"rc=0-42" in seen, seen
        await console.close()
        assert await backend.status(ref) == EngineState.RUNNING
    finally:
        await backend.destroy(spec.sandbox_id)


async def test_a_kubelet_restart_keeps_the_learners_pods(local_cluster, backend):
    spec = new_spec()
    ref = await backend.create(spec)
    try:
        code, out = await sh(backend, ref, f"kubectl apply -f - <<'EOF'\n{POD}EOF\nkubectl wait --for=condition=Ready pod/sleeper --timeout=90s")
        assert code == 0, out
        code, before = await sh(backend, ref, "kubectl get pod sleeper -o jsonpath='{.metadata.uid} {.status.containerStatuses[0].containerID}'")
        await asyncio.to_thread(local_cluster.restart, "kubelet")
        code, out = await sh(backend, ref, "kubectl wait --for=condition=Ready pod/sleeper --timeout=90s")
        assert code == 0, out
        code, after = await sh(backend, ref, "kubectl get pod sleeper -o jsonpath='{.metadata.uid} {.status.containerStatuses[0].containerID}'")
        assert after == before, "the pod's container was replaced by a kubelet restart"
        # And the node still starts new pods.
        code, out = await sh(backend, ref, "kubectl run again --image=localhost:5000/tutorial/base:latest --restart=Never "
                                           "--overrides='" + json.dumps({"spec": {
                                               "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                                               "containers": [{"name": "again", "image": "localhost:5000/tutorial/base:latest", "command": ["sleep", "600"],
                                                               "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}})
                                           + "' && kubectl wait --for=condition=Ready pod/again --timeout=90s")
        assert code == 0, out
    finally:
        await backend.destroy(spec.sandbox_id)


async def test_a_namespace_stuck_terminating_is_told_and_then_reconciled(backend, settings):
    from kubernetes import client

    settings.KUBERNETES_NAMESPACE_WAIT_SECONDS = 3
    spec = new_spec()
    namespace = km.namespace_name(spec.sandbox_id)
    await backend.create(spec)
    core = client.CoreV1Api(backend.api_client())
    hold = {"metadata": {"finalizers": ["tutorial.test/hold"]}}
    await asyncio.to_thread(core.create_namespaced_config_map, namespace, {"metadata": {"name": "held", **hold["metadata"]}})
    try:
        await backend.destroy(spec.sandbox_id)
        answer = await asyncio.to_thread(core.read_namespace, namespace)
        assert answer.status.phase == "Terminating"
        # Starting the same sandbox again (a Reset) says what is happening instead of hanging.
        with pytest.raises(BackendError, match="still being deleted"):
            await backend.create(spec)
        # The reaper sees it and leaves it to the cluster (asking again would change nothing);
        # nothing else of the sandbox is left running.
        assert spec.sandbox_id in await backend.list_owned()
        assert spec.sandbox_id not in await backend.reconcile([])
        assert not backend.toolbox.client.containers.list(all=True, ignore_removed=True,
                                                          filters={"label": f"tutorial.sandbox={spec.sandbox_id}"})
    finally:
        await asyncio.to_thread(core.patch_namespaced_config_map, "held", namespace, {"metadata": {"finalizers": None}})
    for _ in range(120):
        if spec.sandbox_id not in await backend.list_owned():
            break
        await asyncio.sleep(0.5)
    assert spec.sandbox_id not in await backend.list_owned()
    # And now the sandbox starts again.
    ref = await backend.create(spec)
    try:
        assert await backend.status(ref) == EngineState.RUNNING
    finally:
        await backend.destroy(spec.sandbox_id)
