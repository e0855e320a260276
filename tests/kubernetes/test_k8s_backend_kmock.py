"""The Kubernetes backend against kmock (a real HTTP Kubernetes API mock) and the real Docker
engine for the toolbox console: provisioning, destroy, reconciliation, and the clear errors."""

from __future__ import annotations

import asyncio
import socket
import uuid

import kmock
import pytest
import yaml

from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import LABEL_SANDBOX, BackendError, EngineState, EngineUnavailable
from sandbox.backends.kubernetes import (
    ANNOTATION_TOKEN_EXPIRES,
    ANNOTATION_TOKEN_ISSUED,
    KubernetesBackend,
    KubernetesPermissionError,
)

from .kmock_helpers import LEARNER_TOKEN, SERVER_TOKEN, api_url, write_kubeconfig

pytestmark = pytest.mark.engine

EXPECTED = {
    ("", "serviceaccounts", "learner"),
    ("", "serviceaccounts", "default"),
    ("rbac.authorization.k8s.io", "roles", "learner"),
    ("rbac.authorization.k8s.io", "rolebindings", "learner"),
    ("", "resourcequotas", km.POLICY_NAME),
    ("", "limitranges", km.POLICY_NAME),
    ("networking.k8s.io", "networkpolicies", km.POLICY_NAME),
}


def live_objects(api, namespace=None) -> dict[tuple[str, str, str], dict]:
    """What the mock cluster holds now: {(group, plural, name): object} in ``namespace``."""
    found = {}
    for (resource, ns, name), obj in api.objects.items():
        if obj.deleted or ns != namespace:
            continue
        found[(resource.group, resource.plural, name)] = obj.raw
    return found


def requests_of(api, method: str, path_part: str = ""):
    return [r for r in api._requests if r.method == method and path_part in r.url.path]


@pytest.fixture
async def backend(k8s_settings, docker_client):
    made = KubernetesBackend()
    yield made
    # Remove the toolboxes this test left (the namespaces live in the mock only): those on its own
    # network, never another test's or a running site's.
    for container in docker_client.containers.list(all=True, ignore_removed=True, filters={
            "label": ["tutorial.workspace=kubernetes", LABEL_SANDBOX], "network": k8s_settings.KUBERNETES_TOOLBOX_NETWORK}):
        container.remove(force=True)


async def test_create_makes_exactly_the_namespace_objects_and_a_toolbox_with_learner_credentials(backend, k8s_api, make_spec, docker_client, labelled_leftovers):
    spec = make_spec()
    namespace = km.namespace_name(spec.sandbox_id)
    ref = await backend.create(spec)

    cluster_wide = live_objects(k8s_api)
    assert set(cluster_wide) == {("", "namespaces", namespace)}
    stored = cluster_wide[("", "namespaces", namespace)]
    # The manifest, plus when the learner's token was issued and expires (the mock's own expiry).
    annotations = stored["metadata"].pop("annotations")
    assert stored == km.namespace_manifest(spec, pod_security_version="v1.31")
    assert annotations[ANNOTATION_TOKEN_EXPIRES] == "2030-01-01T00:00:00Z" and annotations[ANNOTATION_TOKEN_ISSUED] < "2030"
    objects = live_objects(k8s_api, namespace)
    assert set(objects) == EXPECTED
    for built in km.namespace_objects(spec, namespace):
        group = built["apiVersion"].rpartition("/")[0]
        plural = {"ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings",
                  "ResourceQuota": "resourcequotas", "LimitRange": "limitranges", "NetworkPolicy": "networkpolicies"}[built["kind"]]
        assert objects[(group, plural, built["metadata"]["name"])] == built
    # The token was asked for the learner's account, short-lived, by the server's own account.
    (token_request,) = requests_of(k8s_api, "POST", "/token")
    assert token_request.url.path == f"/api/v1/namespaces/{namespace}/serviceaccounts/learner/token"
    assert token_request.data["spec"]["expirationSeconds"] == 3600
    assert all(r.headers.get("Authorization") == f"Bearer {SERVER_TOKEN}" for r in k8s_api._requests)

    # The console: a running toolbox on the cluster's network, with only the learner's kubeconfig.
    container = docker_client.containers.get(ref)
    assert container.status == "running"
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [k8s_settings_network(backend)]
    assert container.labels[LABEL_SANDBOX] == spec.sandbox_id
    assert await backend.status(ref) == EngineState.RUNNING
    result = await backend.run(ref, "cat \"$KUBECONFIG\"; ls -l \"$KUBECONFIG\"", timeout=10)
    assert result.exit_code == 0, result.output
    text, _, listing = result.output.rpartition("\n-rw-------")
    config = yaml.safe_load(text)
    assert config == km.learner_kubeconfig(server="https://kind-control-plane:6443", namespace=namespace,
                                           token=LEARNER_TOKEN, ca_data=None)
    assert SERVER_TOKEN not in result.output
    assert "learner" in listing or "1000" in listing

    await backend.destroy(spec.sandbox_id)
    assert labelled_leftovers(spec.sandbox_id) == []


def k8s_settings_network(backend) -> str:
    from django.conf import settings

    return settings.KUBERNETES_TOOLBOX_NETWORK


async def test_the_console_is_the_same_tty_transport_as_a_docker_sandbox(backend, make_spec):
    ref = await backend.create(make_spec())
    console = await backend.open_console(ref, replay=False)
    try:
        await backend.resize(ref, 100, 30)
        await console.write(b"echo ns=${KUBECONFIG##*/}-$((6*7)); stty size\n")
        seen = b""
        async with asyncio.timeout(10):
            while b"ns=config-42" not in seen or b"30 100" not in seen:
                chunk = await console.read()
                assert chunk, f"console ended early: {seen!r}"
                seen += chunk
    finally:
        await console.close()


async def test_the_learner_kubeconfig_reaches_only_its_namespace_with_the_learner_token(backend, k8s_api, make_spec, settings):
    """Load the kubeconfig the toolbox got with the official client and make a real request."""
    from kubernetes import client, config

    settings.KUBERNETES_API_INTERNAL_SERVER = ""  # the toolbox would use the server's own address
    spec = make_spec()
    ref = await backend.create(spec)
    result = await backend.run(ref, 'cat "$KUBECONFIG"', timeout=10)
    learner = config.new_client_from_config_dict(yaml.safe_load(result.output))
    namespace = learner.configuration.host and yaml.safe_load(result.output)["contexts"][0]["context"]["namespace"]
    assert namespace == km.namespace_name(spec.sandbox_id)
    await asyncio.to_thread(client.CoreV1Api(learner).list_namespaced_pod, namespace)
    last = k8s_api._requests[-1]
    assert last.url.path == f"/api/v1/namespaces/{namespace}/pods"
    assert last.headers["Authorization"] == f"Bearer {LEARNER_TOKEN}"


async def test_destroy_deletes_the_namespace_in_the_background_and_is_idempotent(backend, k8s_api, make_spec, labelled_leftovers):
    spec = make_spec()
    namespace = km.namespace_name(spec.sandbox_id)
    await backend.create(spec)
    await backend.destroy(spec.sandbox_id)
    (delete,) = requests_of(k8s_api, "DELETE", f"/api/v1/namespaces/{namespace}")
    assert (delete.data or {}).get("propagationPolicy") == "Background" or delete.params.get("propagationPolicy") == "Background"
    assert live_objects(k8s_api) == {}
    assert labelled_leftovers(spec.sandbox_id) == []
    await backend.destroy(spec.sandbox_id)  # nothing there: still fine
    assert len(requests_of(k8s_api, "DELETE")) == 1


async def test_create_twice_reuses_the_namespace_and_leaves_one_toolbox(backend, k8s_api, make_spec, docker_client):
    spec = make_spec()
    first = await backend.create(spec)
    second = await backend.create(spec)
    assert first != second
    toolboxes = docker_client.containers.list(all=True, ignore_removed=True, filters={"label": f"{LABEL_SANDBOX}={spec.sandbox_id}"})
    assert [c.id for c in toolboxes] == [second]
    assert set(live_objects(k8s_api, km.namespace_name(spec.sandbox_id))) == EXPECTED


async def test_reconcile_removes_namespaces_of_sandboxes_that_no_longer_exist(backend, k8s_api, make_spec):
    kept, gone = make_spec(), make_spec()
    await backend.create(kept)
    await backend.create(gone)
    # Namespaces that are not ours must survive reconciliation: no labels, or another workspace.
    k8s_api.objects["v1/namespaces", None, "kube-system"] = {"metadata": {"name": "kube-system"}}
    k8s_api.objects["v1/namespaces", None, "tutorial-impostor"] = {
        "metadata": {"name": "tutorial-impostor", "labels": {LABEL_SANDBOX: "x", "tutorial.workspace": "docker"}}}

    # The engine is shared (other tests' toolboxes may be listed too): look at this test's two only.
    mine = {kept.sandbox_id, gone.sandbox_id}
    owned = await backend.list_owned()
    assert mine <= set(owned) and "x" not in owned
    removed = await backend.reconcile([kept.sandbox_id], in_scope=mine.__contains__)
    assert removed == [gone.sandbox_id]
    names = {key[2] for key in live_objects(k8s_api)}
    assert names == {km.namespace_name(kept.sandbox_id), "kube-system", "tutorial-impostor"}
    assert set(await backend.list_owned()) & mine == {kept.sandbox_id}


async def test_a_colliding_namespace_is_refused_and_left_untouched(backend, k8s_api, make_spec, labelled_leftovers):
    spec = make_spec()
    namespace = km.namespace_name(spec.sandbox_id)
    k8s_api.objects["v1/namespaces", None, namespace] = {"metadata": {"name": namespace, "labels": {"team": "someone-else"}}}
    with pytest.raises(BackendError, match=f"Namespace {namespace} already exists.*does not belong"):
        await backend.create(spec)
    assert live_objects(k8s_api)[("", "namespaces", namespace)]["metadata"]["labels"] == {"team": "someone-else"}
    assert requests_of(k8s_api, "DELETE") == [] and requests_of(k8s_api, "PATCH") == []
    assert labelled_leftovers(spec.sandbox_id) == []
    await backend.destroy(spec.sandbox_id)  # destroy does not delete what is not ours either
    assert requests_of(k8s_api, "DELETE") == []


async def test_bad_sandbox_ids_are_refused_before_anything_is_made(backend, k8s_api, make_spec):
    with pytest.raises(BackendError, match="not a canonical"):
        await backend.create(make_spec(sandbox_id=str(uuid.uuid4()).upper()))
    assert k8s_api._requests == []


async def test_a_learner_removing_their_toolbox_leaves_a_missing_sandbox_that_starts_again(backend, k8s_api, make_spec, docker_client):
    spec = make_spec()
    ref = await backend.create(spec)
    # The learner's shell exits or the container is removed: the console is gone.
    docker_client.containers.get(ref).remove(force=True)
    assert await backend.status(ref) == EngineState.MISSING
    with pytest.raises(BackendError, match="gone"):
        await backend.run(ref, "true", timeout=5)
    new_ref = await backend.create(spec)
    assert await backend.status(new_ref) == EngineState.RUNNING


async def test_a_deleted_namespace_makes_the_sandbox_missing(backend, k8s_api, make_spec):
    spec = make_spec()
    ref = await backend.create(spec)
    del k8s_api.objects["v1/namespaces", None, km.namespace_name(spec.sandbox_id)]
    assert await backend.status(ref) == EngineState.MISSING


async def test_missing_permission_names_the_verb_and_resource_and_leaves_nothing(backend, k8s_api, make_spec, labelled_leftovers):
    k8s_api["post", kmock.resource("rbac.authorization.k8s.io/v1/rolebindings")] << 403 << {
        "apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 403, "reason": "Forbidden",
        "message": 'rolebindings.rbac.authorization.k8s.io is forbidden: User "tutorial" cannot create resource "rolebindings"'}
    spec = make_spec()
    namespace = km.namespace_name(spec.sandbox_id)
    with pytest.raises(KubernetesPermissionError) as raised:
        await backend.create(spec)
    message = str(raised.value)
    assert f"may not create rolebindings.rbac.authorization.k8s.io in namespace {namespace}" in message
    assert "cannot create resource" in message
    # What was made before the refusal is removed again.
    assert requests_of(k8s_api, "DELETE", f"/api/v1/namespaces/{namespace}")
    assert labelled_leftovers(spec.sandbox_id) == []


async def test_an_unreachable_cluster_is_a_clear_error(settings, tmp_path, make_spec):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.KUBERNETES_KUBECONFIG = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    backend = KubernetesBackend()
    with pytest.raises(EngineUnavailable, match=f"does not answer at http://127.0.0.1:{port}.*kind"):
        await backend.create(make_spec())
    with pytest.raises(EngineUnavailable):
        await backend.list_owned()


async def test_no_kubeconfig_is_a_clear_error(settings, tmp_path, make_spec):
    settings.KUBERNETES_KUBECONFIG = str(tmp_path / "nowhere" / "config")
    with pytest.raises(BackendError, match=r"No kubeconfig at .*nowhere/config.*python -m cluster up.*TUTORIAL_KUBECONFIG"):
        await KubernetesBackend().create(make_spec())


async def test_an_unknown_context_is_a_clear_error(settings, k8s_api, tmp_path, make_spec):
    settings.KUBERNETES_KUBECONFIG = write_kubeconfig(tmp_path / "kubeconfig", api_url(k8s_api))
    with pytest.raises(BackendError, match="context 'kind-missing'"):
        await KubernetesBackend(context="kind-missing").list_owned()


async def test_a_missing_cluster_network_is_a_clear_error_and_leaves_nothing(backend, k8s_api, settings, make_spec, labelled_leftovers):
    settings.KUBERNETES_TOOLBOX_NETWORK = "no-such-kind-network"
    spec = make_spec()
    with pytest.raises(BackendError, match="Docker network 'no-such-kind-network'.*kind create cluster"):
        await backend.create(spec)
    assert requests_of(k8s_api, "DELETE", km.namespace_name(spec.sandbox_id))
    assert labelled_leftovers(spec.sandbox_id) == []


async def test_an_unbuilt_toolbox_image_is_a_clear_error(backend, make_spec):
    spec = make_spec()
    spec = type(spec)(**{**spec.__dict__, "image": "tutorial/no-such-toolbox:latest"})
    with pytest.raises(BackendError, match="build_images toolbox"):
        await backend.create(spec)


async def test_pods_that_cannot_pull_their_image_are_explained(backend, k8s_api, make_spec):
    spec = make_spec()
    namespace = km.namespace_name(spec.sandbox_id)
    await backend.create(spec)
    k8s_api.objects["v1/pods", namespace, "web"] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": namespace},
        "spec": {"containers": [{"name": "web", "image": "localhost:5000/nope:1"}]},
        "status": {"phase": "Pending", "containerStatuses": [{
            "name": "web", "image": "localhost:5000/nope:1", "imageID": "", "ready": False, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff",
                                  "message": 'Back-off pulling image "localhost:5000/nope:1": not found'}}}]},
    }
    problems = await backend.pod_problems(spec.sandbox_id)
    assert problems == [
        'Pod web, container web cannot pull its image localhost:5000/nope:1 (ImagePullBackOff): '
        'Back-off pulling image "localhost:5000/nope:1": not found'
    ]
