"""Plain sandboxes as pods on the real cluster, through the site's own machinery: the console
websocket, stop and start keeping the files, the warm pool, the reaper's reconciliation, and the
cluster itself refusing a pod that breaks Pod Security ``restricted`` in the sandbox namespace."""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid

import pytest
from asgiref.sync import sync_to_async

from sandbox import home_files, pool, reaper, services, tasks
from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import Limits, SandboxSpec
from sandbox.backends.pod import PodBackend
from sandbox.images.recipes import image_tag
from sandbox.models import Sandbox
from tests import factories
from tests.kubernetes.real_cluster import require_cluster
from tests.websockets import connect_console, next_text, read_until

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

LESSON = "what-is-a-container"


@pytest.fixture
def pods(settings, tmp_path):
    """Plain sandboxes as pods for this test; every pod it made is gone afterwards."""
    settings.KUBERNETES_KUBECONFIG = require_cluster()
    settings.KUBERNETES_CONTEXT = ""
    settings.SANDBOX_BACKENDS = dict(settings.SANDBOX_BACKENDS, plain="sandbox.backends.pod.PodBackend")
    settings.DATA_DIR = tmp_path
    services.get_backend.cache_clear()
    made: list[str] = []
    yield made
    from asgiref.sync import async_to_sync

    async def finish() -> dict:
        await tasks.wait_for_background()
        backend = services.get_backend("plain")
        for sandbox_id in made:
            await backend.destroy(sandbox_id)
        return await backend.consoles()

    left = async_to_sync(finish)()
    services.get_backend.cache_clear()
    assert not set(made) & set(left), "sandbox pods were left behind"


async def make_user(name: str):
    return await sync_to_async(factories.make_user)(f"{name}-{uuid.uuid4().hex[:6]}")


async def test_the_console_websocket_drives_a_pod_for_the_learner_and_a_second_tab(pods, console, base_image):
    learner = await make_user("pod-learner")
    sandbox = await services.start_sandbox(learner, LESSON, "plain", "base")
    pods.append(str(sandbox.id))
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    assert sandbox.engine_ref == km.sandbox_pod_name(str(sandbox.id))
    first = await console(sandbox.id, learner)
    assert (await first.connect())[0]
    await first.send_to(text_data=json.dumps({"type": "resize", "cols": 99, "rows": 31}))
    # A resize travels on the pod's control attach, beside the keystrokes: as a person would,
    # type after it has had a moment (the Docker console test does the same).
    await asyncio.sleep(1.0)
    await first.send_to(bytes_data=b"stty size; echo pod-$((6*7))\n")
    shown = await read_until(first, rb"pod-42", timeout=30)
    assert b"31 99" in shown
    second = await console(sandbox.id, learner)
    assert (await second.connect())[0]
    await read_until(second, rb"pod-42", timeout=10)  # the replay
    await second.send_to(bytes_data=b"echo second-$((1+1))\n")
    await read_until(first, rb"second-2", timeout=30)
    await first.disconnect()
    await second.disconnect()


async def test_every_new_console_of_a_pod_shows_the_prompt_without_typing(pods, console, base_image):
    learner = await make_user("pod-reload")
    sandbox = await services.start_sandbox(learner, LESSON, "plain", "base")
    pods.append(str(sandbox.id))
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    for _ in range(3):  # the first tab, then reloads of the page
        viewer = await console(sandbox.id, learner)
        assert (await viewer.connect())[0]
        await viewer.send_to(text_data=json.dumps({"type": "resize", "cols": 100, "rows": 30}))
        await read_until(viewer, rb"\$ ", timeout=10)
        await viewer.disconnect()
    await services.stop_sandbox(sandbox)
    assert str(sandbox.id) not in await services.get_backend("plain").list_owned()


async def test_stop_keeps_the_home_and_start_brings_it_back(pods, base_image):
    learner = await make_user("pod-files")
    sandbox = await services.start_sandbox(learner, LESSON, "plain", "base")
    pods.append(str(sandbox.id))
    assert (await services.run_script(sandbox, "echo kept > notes.txt", timeout=20)).exit_code == 0
    await services.stop_sandbox(sandbox)
    assert await home_files.has_saved_files(sandbox.id)
    await services.restart_sandbox(sandbox)
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    assert (await services.run_script(sandbox, "cat notes.txt", timeout=20)).output.strip() == "kept"
    await services.stop_sandbox(sandbox)


async def test_a_home_saved_by_one_replica_comes_back_from_another_with_the_database_store(
        pods, settings, tmp_path, base_image):
    # As deploy/kubernetes runs the site: each replica (and the reaper) has a DATA_DIR of its own.
    settings.HOME_FILES_STORE = "database"
    learner = await make_user("pod-replicas")
    sandbox = await services.start_sandbox(learner, LESSON, "plain", "base")
    pods.append(str(sandbox.id))
    assert (await services.run_script(sandbox, "mkdir -p notes && echo kept-on-a > notes/a.txt", timeout=20)).exit_code == 0
    settings.DATA_DIR = tmp_path / "replica-a"
    await services.stop_sandbox(sandbox)
    assert sandbox.files_saved_at is not None, sandbox.failure_reason

    settings.DATA_DIR = tmp_path / "replica-b"
    assert await home_files.has_saved_files(sandbox.id)
    await services.restart_sandbox(sandbox)
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    assert (await services.run_script(sandbox, "cat notes/a.txt", timeout=20)).output.strip() == "kept-on-a"
    assert not await home_files.has_saved_files(sandbox.id)  # the running pod holds them now
    await services.stop_sandbox(sandbox)


async def test_the_warm_pool_hands_out_a_running_pod(pods, settings, base_image):
    settings.SANDBOX_WARM_POOL = {"base": 1}
    assert await pool.refill() == 1
    pooled = await Sandbox.objects.filter(owner__isnull=True, state=Sandbox.State.POOLED).afirst()
    pods.append(str(pooled.id))
    settings.SANDBOX_WARM_POOL = {}
    # A reaper pass lists the pod running: a Start then hands it out without a status read.
    long_ago = pooled.seen_running_at - datetime.timedelta(minutes=10)
    await Sandbox.objects.filter(pk=pooled.pk).aupdate(seen_running_at=long_ago)
    await reaper.reap_once({str(pooled.id)}.__contains__)
    assert (await Sandbox.objects.aget(pk=pooled.pk)).seen_running_at > long_ago + datetime.timedelta(minutes=9)
    learner = await make_user("pod-pool")
    sandbox = await services.start_sandbox(learner, LESSON, "plain", "base")
    pods.append(str(sandbox.id))
    assert sandbox.id == pooled.id and sandbox.state == Sandbox.State.RUNNING
    assert (await services.run_script(sandbox, "echo from-the-pool", timeout=20)).output.strip() == "from-the-pool"
    await services.stop_sandbox(sandbox)


async def test_the_reaper_removes_an_orphan_pod_and_marks_a_vanished_one_gone(pods, base_image):
    backend = services.get_backend("plain")
    assert isinstance(backend, PodBackend)
    orphan = SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=999, owner_name="nobody", lesson="orphaned",
                         workspace="plain", image=image_tag("base"), limits=Limits())
    pods.append(orphan.sandbox_id)
    await backend.create(orphan)
    learner = await make_user("pod-vanish")
    sandbox = await services.start_sandbox(learner, LESSON, "plain", "base")
    pods.append(str(sandbox.id))
    await backend.destroy(str(sandbox.id))  # as `kubectl delete pod` would
    report = await reaper.reap_once({orphan.sandbox_id, str(sandbox.id)}.__contains__)
    assert report.orphans_removed == [orphan.sandbox_id]
    assert report.marked_gone == [str(sandbox.id)]
    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.GONE
    assert orphan.sandbox_id not in await backend.list_owned()


async def test_the_cluster_refuses_a_root_pod_in_the_sandbox_namespace(pods, base_image):
    backend = services.get_backend("plain")
    await backend.ensure_namespace()
    # No securityContext: root, capabilities kept, privilege escalation allowed.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"escape-{uuid.uuid4().hex[:8]}"},
           "spec": {"containers": [{"name": "x", "image": "localhost:5000/tutorial/base:latest"}]}}
    answer = await backend.api.request("POST", f"/api/v1/namespaces/{backend.namespace}/pods", body=pod)
    assert answer.status == 403 and "PodSecurity" in answer.message()


async def test_a_watcher_sees_an_idle_learners_prompt_on_a_pod_at_the_learners_size(
    pods, console, classroom, owner, instructor, base_image
):
    """The pod's log holds whole lines only; the watcher's redraw (at the learner's size, asked of
    the learner's console) travels on the watcher's own attach, so it comes once that is joined."""
    sandbox = await services.start_sandbox(owner, LESSON, "plain", "base")
    pods.append(str(sandbox.id))
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    learner = await connect_console(console, sandbox, owner)  # 100 columns, 30 rows
    await learner.send_to(bytes_data=b"echo idle-$((5*5))\n")
    await read_until(learner, rb"idle-25\r\n[^\n]*\$ [^\n]*\Z", timeout=30)
    for _ in range(3):  # the instructor opens the watch page, then reloads it
        watcher = await console(sandbox.id, instructor)
        assert (await watcher.connect())[0]
        assert await next_text(watcher) == {"type": "state", "state": "running"}
        assert b"idle-25" in await read_until(watcher, rb"\$ [^\n]*\Z", timeout=10)
        await watcher.disconnect()
    await learner.send_to(bytes_data=b"stty size; echo size-$((2+2))\n")
    assert b"30 100" in await read_until(learner, rb"size-4\r\n", timeout=30)
    await learner.disconnect()
