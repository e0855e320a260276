"""The toolbox image builds offline from this machine's static kubectl, and kubectl runs in it."""

from __future__ import annotations

import pytest

from sandbox.images import toolbox
from sandbox.images.build import BuildError, build_image, register

pytestmark = pytest.mark.engine


def test_toolbox_builds_offline_and_its_kubectl_runs_without_credentials(docker_client, base_image):
    register(toolbox.RECIPE)
    built = build_image(docker_client, "toolbox")
    assert built.startswith("tutorial/toolbox:latest")
    output = docker_client.containers.run(
        "tutorial/toolbox:latest", ["sh", "-c", "kubectl version --client; echo KUBECONFIG=$KUBECONFIG; ls -A /home/learner"],
        network_mode="none", remove=True, cap_drop=["ALL"], user="1000:1000",
    ).decode()
    assert "Client Version: v1." in output
    assert "KUBECONFIG=/home/learner/.kube/config" in output
    assert ".kube" not in output.split("KUBECONFIG=")[1].split("\n", 1)[1]  # no credentials baked in


def test_a_missing_kubectl_is_a_clear_build_error(monkeypatch):
    monkeypatch.setattr(toolbox, "KUBECTL_CANDIDATES", ("/nonexistent/kubectl",))
    with pytest.raises(BuildError, match="needs a static kubectl.*TUTORIAL_KUBECTL"):
        toolbox.find_kubectl()
