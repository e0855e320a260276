"""The backend contract against a REAL cluster: ``TUTORIAL_TEST_KUBECONFIG`` (``make test`` and
``.ci/run`` bring up this machine's local cluster, cluster/, and point it there; under ``CI`` a
missing cluster fails). The same contract the Docker backend passes (create, status, console,
resize, run, destroy, list_owned), plus what only a real API server shows: RBAC, Pod Security,
quota and image pulls; once with the console as a container on the Docker engine, once as a pod
in the tools namespace (``KUBERNETES_TOOLBOX``). With kind instead, see docs/kubernetes.md.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import BackendError, EngineState, Limits, SandboxSpec
from sandbox.backends.kubernetes import KubernetesBackend
from tests.kubernetes.real_cluster import (
    build_toolbox_image,
    install_of_its_own,
    point_settings_at_cluster,
    policies_of_install,
)

pytestmark = [
    pytest.mark.engine,
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def toolbox_image(docker_client) -> str:
    return build_toolbox_image(docker_client, in_registry=True)


@pytest.fixture(params=("docker", "pod"))
def real_backend(request, settings, docker_client):
    """The backend with each toolbox. With pods it is an install of its own, whose NetworkPolicy
    in the tools namespace is removed with it."""
    point_settings_at_cluster(settings)
    settings.KUBERNETES_QUOTA = dict(km.DEFAULT_QUOTA, pods="3")
    if request.param == "docker":
        yield KubernetesBackend(toolbox="docker")
        return
    install = install_of_its_own(settings, "contract")
    backend = KubernetesBackend(toolbox="pod")
    yield backend

    async def remove_policy() -> list[str]:
        await backend.toolbox.remove_namespace_policy()  # refused while a toolbox pod is left
        return await policies_of_install(backend.toolbox.api, backend.toolbox.namespace, install)

    assert not asyncio.run(remove_policy()), "the install's network policy was left behind"


def spec_for(image: str) -> SandboxSpec:
    return SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=1, owner_name="contract", lesson="pods",
                       workspace="kubernetes", image=image, limits=Limits())


async def sh(backend, ref, script, timeout=60):
    result = await backend.run(ref, script, timeout=timeout)
    return result.exit_code, result.output


POD = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  securityContext: {{runAsNonRoot: true, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
    - name: main
      image: {image}
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
      securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}{extra}}}
"""


async def test_the_contract_and_the_security_model_on_a_real_cluster(real_backend, toolbox_image, labelled_leftovers):
    backend = real_backend
    spec = spec_for(toolbox_image)
    namespace = km.namespace_name(spec.sandbox_id)
    ref = await backend.create(spec)
    try:
        assert await backend.status(ref) == EngineState.RUNNING
        assert spec.sandbox_id in await backend.list_owned()

        # The console: the same TTY transport as a Docker sandbox.
        console = await backend.open_console(ref, replay=False)
        await backend.resize(ref, 90, 25)
        await console.write(b"kubectl config view --minify -o jsonpath='{..namespace}'; echo; echo done-$((6*7))\n")
        seen = b""
        async with asyncio.timeout(30):
            while b"done-42" not in seen:
                chunk = await console.read()
                assert chunk, seen
                seen += chunk
        await console.close()
        assert namespace.encode() in seen

        # The learner's own namespace works, with the learner's credentials.
        code, out = await sh(backend, ref, "kubectl auth whoami -o jsonpath='{.status.userInfo.username}' 2>/dev/null || kubectl get pods")
        assert code == 0, out
        # Forbidden: other namespaces, nodes, editing quota or network policy, roles, impersonation.
        for script in ("kubectl get pods -n kube-system", "kubectl get nodes", "kubectl get namespaces",
                       f"kubectl delete resourcequota {km.POLICY_NAME}", f"kubectl delete networkpolicy {km.POLICY_NAME}",
                       "kubectl create role x --verb=get --resource=pods", "kubectl get pods --as=system:admin"):
            code, out = await sh(backend, ref, script)
            assert code != 0 and "forbidden" in out.lower(), (script, out)
        # Refused by quota: NodePort and LoadBalancer services.
        for kind in ("nodeport", "loadbalancer"):
            code, out = await sh(backend, ref, f"kubectl create service {kind} open --tcp=80:8080")
            assert code != 0 and "exceeded quota" in out, out
        # Refused by Pod Security restricted: privileged and root pods, hostPath.
        image = f"{os.environ.get('TUTORIAL_K8S_LESSON_REGISTRY', 'localhost:5000')}/tutorial/base:latest"
        # A privileged pod is refused and the field is named (by the API server's own
        # --allow-privileged=false on the local cluster, by Pod Security elsewhere).
        privileged = POD.format(name="evil", image=image, extra=", privileged: true")
        code, out = await sh(backend, ref, f"kubectl apply -f - <<'EOF'\n{privileged}\nEOF")
        assert code != 0 and "privileged" in out and ("violates PodSecurity" in out or "Forbidden" in out), out
        root = POD.format(name="root", image=image, extra=", runAsUser: 0")
        code, out = await sh(backend, ref, f"kubectl apply -f - <<'EOF'\n{root}\nEOF")
        assert code != 0 and "violates PodSecurity" in out and "runAsUser=0" in out, out
        # An exhausted quota (pods=3 here) is refused with the quota's own message.
        for number in range(3):
            code, out = await sh(backend, ref, f"kubectl apply -f - <<'EOF'\n{POD.format(name=f'p{number}', image=image, extra='')}\nEOF")
            assert code == 0, out
        code, out = await sh(backend, ref, f"kubectl apply -f - <<'EOF'\n{POD.format(name='p3', image=image, extra='')}\nEOF")
        assert code != 0 and "exceeded quota" in out, out
        # A lesson image that cannot be pulled: the learner is told why.
        code, out = await sh(backend, ref, "kubectl delete pod p2 --wait=true")
        missing = POD.format(name="nopull", image="localhost:5000/tutorial/does-not-exist:1", extra="")
        code, out = await sh(backend, ref, f"kubectl apply -f - <<'EOF'\n{missing}\nEOF")
        assert code == 0, out
        for _ in range(60):
            problems = await backend.pod_problems(spec.sandbox_id)
            if problems:
                break
            await asyncio.sleep(1)
        assert any("nopull" in p and "cannot pull its image" in p for p in problems), problems
    finally:
        await backend.destroy(spec.sandbox_id)
    assert labelled_leftovers(spec.sandbox_id) == []
    namespace_now = await backend._read_namespace(namespace)
    assert namespace_now is None or namespace_now.status.phase == "Terminating"
    with pytest.raises(BackendError):
        await backend.run(ref, "true", timeout=5)


async def test_reconcile_on_a_real_cluster(real_backend, toolbox_image):
    backend = real_backend
    kept, gone = spec_for(toolbox_image), spec_for(toolbox_image)
    await backend.create(kept)
    await backend.create(gone)
    try:
        removed = await backend.reconcile([kept.sandbox_id, *[i for i in await backend.list_owned() if i not in (kept.sandbox_id, gone.sandbox_id)]])
        assert removed == [gone.sandbox_id]
        assert gone.sandbox_id not in await backend.toolbox.toolbox_consoles()
        assert kept.sandbox_id in await backend.toolbox.toolbox_consoles()
    finally:
        await backend.destroy(kept.sandbox_id)
        await backend.destroy(gone.sandbox_id)
