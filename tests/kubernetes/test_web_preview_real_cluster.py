"""The web preview of a learner's Service on a REAL cluster (``TUTORIAL_TEST_KUBECONFIG``; under
``CI`` a missing cluster fails): a Service that selects a ready pod opens through the site at that
pod's own address; a Service without a selector whose Endpoints the learner pointed at the API
server is never offered nor forwarded to."""

from __future__ import annotations

import pytest
from django.test import AsyncClient

from sandbox import preview, services
from sandbox.models import Sandbox
from tests.kubernetes.real_cluster import point_settings_at_cluster
from tests.kubernetes.test_credentials_real_cluster import toolbox_image  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

APPLY = r"""kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: page, labels: {app: page}}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: main
      image: $REGISTRY/tutorial/base:latest
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "echo hello from the pod > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {name: page}
spec:
  selector: {app: page}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: sneaky}
spec:
  ports: [{port: 80, targetPort: 6443}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: sneaky}
subsets:
  - addresses: [{ip: "172.30.99.1"}]
    ports: [{port: 6443}]
EOF
kubectl wait --for=condition=Ready pod/page --timeout=90s >/dev/null && echo ready"""


async def test_a_service_opens_at_its_pods_address_and_a_hand_made_endpoint_never_does(settings, owner, toolbox_image):  # noqa: F811
    point_settings_at_cluster(settings)
    settings.KUBERNETES_LOCAL_CLUSTER = True
    assert preview.offered("kubernetes")
    sandbox = await services.start_sandbox(owner, "services", "kubernetes", "toolbox")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    try:
        applied = await services.get_backend("kubernetes").run(sandbox.engine_ref, APPLY, timeout=150)
        assert "ready" in applied.output, applied.output
        ports = await preview.ports_of(sandbox)
        assert [(p.key, p.name, p.port, p.host_port) for p in ports] == [("page:80", "page", 80, 8080)], ports
        assert ports[0].host.startswith("10.244."), ports[0]

        preview.forget_ownership()
        page = await AsyncClient().get(preview.make_link(sandbox.id, "page:80", owner.pk))
        body = b"".join([chunk async for chunk in page.streaming_content])
        assert page.status_code == 200 and b"hello from the pod" in body
        assert "allow-same-origin" not in page["Content-Security-Policy"]

        sneaky = await AsyncClient().get(preview.make_link(sandbox.id, "sneaky:80", owner.pk))
        assert sneaky.status_code == 404
    finally:
        await services.stop_sandbox(sandbox)
