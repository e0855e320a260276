"""Kubernetes lessons with their console as a pod (``TUTORIAL_KUBERNETES_TOOLBOX=pod``) on the REAL
cluster, through the site's own machinery and with the site's Docker engine switched off: the
console websocket shows a prompt, kubectl reaches the learner's namespace and nothing else, a
lesson's check passes after its solution, the token is renewed in the open console, the toolbox
reaches the API server and not the learner's pods, and stop leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import yaml
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings

from lessons import checks
from lessons.catalogue import get_lesson
from sandbox import services, tasks
from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import LABEL_INSTALL, LABEL_SANDBOX, BackendError
from sandbox.backends.toolboxes import PodToolboxes
from sandbox.models import Sandbox
from tests import factories
from tests.kubernetes.real_cluster import (
    build_toolbox_image,
    install_of_its_own,
    point_settings_at_cluster,
    policies_of_install,
)
from tests.kubernetes.test_isolation_real_cluster import SERVER_READY, apply, pod_yaml
from tests.websockets import connect_console, read_until

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True), pytest.mark.timeout(400)]

LESSON = "pods"


@pytest.fixture(scope="module")
def toolbox_in_registry(docker_client):
    """The toolbox image, built and in the classroom registry the node pulls from."""
    return build_toolbox_image(docker_client, in_registry=True)


@pytest.fixture
def toolbox_pods(settings, toolbox_in_registry):
    """Kubernetes sandboxes whose console is a pod, on a site with no Docker engine, as an install
    of their own; every sandbox made is gone afterwards (its toolbox pod and its namespace), and
    so is the install's NetworkPolicy in the tools namespace."""
    point_settings_at_cluster(settings)
    install = install_of_its_own(settings, "toolbox-pods")
    settings.KUBERNETES_TOOLBOX = "pod"
    settings.DOCKER_ENGINE = False
    settings.KUBERNETES_TOKEN_SECONDS = km.MIN_TOKEN_SECONDS
    services.get_backend.cache_clear()
    made: list[str] = []
    yield made

    async def finish() -> tuple[dict, list[str]]:
        await tasks.wait_for_background()
        backend = services.get_backend("kubernetes")
        for sandbox_id in made:
            await backend.destroy(sandbox_id)
        consoles = await backend.toolbox.toolbox_consoles()
        if not consoles:
            await backend.toolbox.remove_namespace_policy()
        return consoles, await policies_of_install(backend.toolbox.api, backend.toolbox.namespace, install)

    left, policies = async_to_sync(finish)()
    services.get_backend.cache_clear()
    assert not set(made) & set(left), "toolbox pods were left behind"
    assert not policies, f"the install's network policy was left behind: {policies}"


async def make_user(name: str):
    return await sync_to_async(factories.make_user)(f"{name}-{uuid.uuid4().hex[:6]}")


async def start(made: list[str], name: str, learner=None) -> Sandbox:
    learner = learner or await make_user(name)
    sandbox = await services.start_sandbox(learner, LESSON, "kubernetes", "toolbox")
    made.append(str(sandbox.id))
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    return sandbox


async def sh(sandbox: Sandbox, script: str, timeout: float = 60) -> tuple[int | None, str]:
    result = await services.run_script(sandbox, script, timeout=timeout)
    return result.exit_code, result.output


async def test_a_kubernetes_lesson_runs_with_its_console_as_a_pod_and_no_docker_engine(toolbox_pods, console):
    learner = await make_user("toolbox-pod")
    sandbox = await start(toolbox_pods, "toolbox-pod", learner)
    backend = services.get_backend("kubernetes")
    assert isinstance(backend.toolbox, PodToolboxes)
    assert sandbox.engine_ref == km.sandbox_pod_name(str(sandbox.id))

    # The console: the pod's TTY through the site's websocket, with a prompt and kubectl.
    viewer = await console(sandbox.id, learner)
    assert (await viewer.connect())[0]
    await viewer.send_to(text_data=json.dumps({"type": "resize", "cols": 100, "rows": 30}))
    await asyncio.sleep(1.0)
    await viewer.send_to(bytes_data=b"kubectl get pods; echo toolbox-$((6*7))\n")
    shown = await read_until(viewer, rb"toolbox-42", timeout=60)
    assert b"No resources found in tutorial-" in shown
    await viewer.disconnect()

    # kubectl reaches the learner's namespace and nothing else.
    code, out = await sh(sandbox, "kubectl get pods")
    assert code == 0, out
    for forbidden in ("kubectl get pods -n default", "kubectl get nodes", "kubectl get pods -n kube-system"):
        code, out = await sh(sandbox, forbidden)
        assert code != 0 and "Forbidden" in out, (forbidden, out)

    # The pod holds no credential of its own and keeps a plain sandbox pod's hardening.
    answer = await backend.toolbox.api.request("GET", f"/api/v1/namespaces/{backend.toolbox.namespace}/pods/{sandbox.engine_ref}")
    pod = answer.json()
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert not [v for v in pod["spec"]["volumes"] if "projected" in v or "secret" in v]
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    code, out = await sh(sandbox, "ls /var/run/secrets/kubernetes.io 2>&1; id -u")
    assert out.strip().endswith("1000") and "No such file" in out, out

    # A lesson's checks fail on the fresh sandbox and pass after their solution.
    lesson = get_lesson(LESSON)
    steps = [step for step in lesson.steps if step.check][:2]
    for step in steps:
        await checks.run_setup(sandbox, step)
        before = await checks.run_check(sandbox, step)
        assert before.outcome == "failed", (step.path.name, before)
        solution = await services.run_script(sandbox, step.solution, timeout=max(step.timeout, 60))
        assert solution.exit_code == 0, (step.path.name, solution)
        after = await checks.run_check(sandbox, step)
        assert after.passed, (step.path.name, after)

    # Stop removes the toolbox pod and the namespace.
    sandbox_id = str(sandbox.id)
    await services.stop_sandbox(sandbox)
    assert sandbox_id not in await backend.toolbox.toolbox_consoles()
    namespace = await backend._read_namespace(backend.namespace_for(sandbox_id))
    assert namespace is None or namespace.status.phase == "Terminating"


async def test_credentials_are_renewed_in_the_toolbox_pod_and_only_its_own(toolbox_pods):
    first = await start(toolbox_pods, "toolbox-renew")
    other = await start(toolbox_pods, "toolbox-other")
    backend = services.get_backend("kubernetes")
    read = 'cat "$KUBECONFIG"'

    def token(out: str) -> str:
        return yaml.safe_load(out)["users"][0]["user"]["token"]

    code, out = await sh(first, read)
    old = token(out)
    await backend.refresh_credentials(str(first.id), first.engine_ref)
    code, out = await sh(first, read)
    assert code == 0 and token(out) != old
    assert (await sh(first, "kubectl get pods"))[0] == 0  # the new token works
    with pytest.raises(BackendError, match="not the console of sandbox"):
        await backend.refresh_credentials(str(first.id), other.engine_ref)
    # The reaper's view: both consoles are this install's, and labelled for their sandbox.
    consoles = await backend.toolbox.toolbox_consoles()
    assert consoles[str(first.id)] == first.engine_ref and consoles[str(other.id)] == other.engine_ref
    assert await backend.toolbox.sandbox_of(other.engine_ref) == str(other.id)
    for sandbox in (first, other):
        await services.stop_sandbox(sandbox)


async def test_the_toolbox_pod_reaches_the_api_server_and_nothing_else(toolbox_pods):
    sandbox = await start(toolbox_pods, "toolbox-net")
    backend = services.get_backend("kubernetes")
    dns = (await backend.toolbox.api.request("GET", "/api/v1/namespaces/kube-system/services/kube-dns")).json()
    lookup = f"timeout 10 nslookup kubernetes.default.svc.cluster.local {dns['spec']['clusterIP']}"
    server = pod_yaml("web", "echo hello > /tmp/index.html && exec httpd -f -p 8080 -h /tmp", tail=SERVER_READY)
    script = (f"{apply(server)}\nkubectl wait --for=condition=Ready pod/web --timeout=90s >/dev/null && "
              "kubectl get pod web -o jsonpath='{.status.podIP}'")
    code, out = await sh(sandbox, script, timeout=120)
    assert code == 0, out
    pod_ip = out.strip().splitlines()[-1]
    # The cluster's DNS answers the learner's own pod (its namespace's policy allows DNS; a pod
    # the policy enforcer has not synced yet is dropped for a moment, hence the retries) ...
    code, out = await sh(sandbox, f"for try in 1 2 3 4 5 6 7 8; do kubectl exec web -- {lookup} && exit 0; sleep 2; done; "
                                  "exit 1", timeout=150)
    assert code == 0, out
    # ... but not the toolbox, whose policy allows the API server only; nor does the learner's pod.
    code, out = await sh(sandbox, f"{lookup}; echo exit=$?", timeout=30)
    assert "exit=0" not in out, out
    code, out = await sh(sandbox, f"wget -q -T 5 -O- http://{pod_ip}:8080/ 2>&1; echo exit=$?", timeout=30)
    assert "exit=0" not in out and "hello" not in out, out
    assert (await sh(sandbox, "kubectl get pod web"))[0] == 0  # while the API server still answers
    # One policy for the install, however many toolboxes it started, of single addresses only.
    policies = await backend.toolbox.api.request(
        "GET", f"/apis/networking.k8s.io/v1/namespaces/{backend.toolbox.namespace}/networkpolicies",
        {"labelSelector": f"{LABEL_INSTALL}={settings.INSTALL_ID}"})
    items = policies.json()["items"]
    assert [item["metadata"]["name"] for item in items] == [f"tutorial-toolboxes-{settings.INSTALL_ID}"]
    egress = items[0]["spec"]["egress"]
    assert egress and all(peer["ipBlock"]["cidr"].endswith(("/32", "/128")) for rule in egress for peer in rule["to"])
    await services.stop_sandbox(sandbox)


async def test_the_reaper_removes_an_orphan_toolbox_pod_and_its_namespace(toolbox_pods):
    sandbox = await start(toolbox_pods, "toolbox-orphan")
    sandbox_id = str(sandbox.id)
    await Sandbox.objects.filter(pk=sandbox.pk).adelete()  # the row is gone: both objects are orphans
    backend = services.get_backend("kubernetes")
    removed = await backend.reconcile([], in_scope={sandbox_id}.__contains__)
    assert removed == [sandbox_id]
    assert sandbox_id not in await backend.toolbox.toolbox_consoles()
    answer = await backend.toolbox.api.request("GET", f"/api/v1/namespaces/{backend.toolbox.namespace}/pods",
                                               {"labelSelector": f"{LABEL_SANDBOX}={sandbox_id}"})
    assert not answer.json()["items"]


async def test_an_instructor_watching_a_toolbox_pod_sees_the_idle_prompt(toolbox_pods, console):
    """The toolbox is attached and resized as a plain pod sandbox is, through the same console:
    a watcher gets the idle learner's prompt by the redraw it makes at the learner's size."""
    from classroom import roster

    learner = await make_user("toolbox-watched")
    teacher = await make_user("toolbox-teacher")
    await sync_to_async(roster.grant_instructor)(teacher)
    room = await sync_to_async(roster.create_classroom)(teacher, "Toolbox class", [LESSON])
    await sync_to_async(roster.join)(room, learner, "Tia Toolbox")
    sandbox = await start(toolbox_pods, "toolbox-watched", learner)
    typing = await connect_console(console, sandbox, learner)  # 100 columns, 30 rows
    await typing.send_to(bytes_data=b"echo idle-$((5*5))\n")
    await read_until(typing, rb"idle-25\r\n[^\n]*\$ [^\n]*\Z", timeout=30)
    watcher = await console(sandbox.id, teacher)
    assert (await watcher.connect())[0]
    assert b"idle-25" in await read_until(watcher, rb"\$ [^\n]*\Z", timeout=15)
    await watcher.disconnect()
    await typing.disconnect()
