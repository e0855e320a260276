"""The local cluster as the site's default Kubernetes (cluster/): settings, and what to tell a
learner while it is not ready.

A configured kubeconfig always wins: ``TUTORIAL_KUBECONFIG``, ``$KUBECONFIG`` or
``~/.kube/config``. Without one the Kubernetes lessons use the cluster ``make run`` prepares on
this machine, unless ``TUTORIAL_LOCAL_CLUSTER=0``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cluster import status as cluster_status
from cluster.layout import DOCKER_NETWORK, Layout


def configured_kubeconfig(environ=os.environ) -> str:
    """The kubeconfig an operator chose, or ``""``."""
    if environ.get("TUTORIAL_KUBECONFIG"):
        return environ["TUTORIAL_KUBECONFIG"]
    if environ.get("KUBECONFIG"):
        return ""  # the backend reads $KUBECONFIG itself
    return ""


def uses_local_cluster(environ=os.environ, home: Path | None = None) -> bool:
    if environ.get("TUTORIAL_LOCAL_CLUSTER", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if environ.get("TUTORIAL_KUBECONFIG") or environ.get("KUBECONFIG"):
        return False
    return not ((home or Path.home()) / ".kube" / "config").is_file()


def cluster_settings(environ=os.environ, home: Path | None = None) -> dict:
    """Settings for the Kubernetes backend when it uses the local cluster, else ``{}``."""
    if not uses_local_cluster(environ, home):
        return {}
    layout = Layout.from_environment(environ)
    return {
        "KUBERNETES_LOCAL_CLUSTER": True,
        "KUBERNETES_KUBECONFIG": str(layout.admin_kubeconfig),
        "KUBERNETES_CONTEXT": "",
        # The kubeconfig already names the node's address on the toolboxes' network.
        "KUBERNETES_API_INTERNAL_SERVER": "",
        "KUBERNETES_TOOLBOX_NETWORK": DOCKER_NETWORK,
    }


def problem(settings) -> tuple[str, bool]:
    """(what a learner reads, whether it is on its way) while the local cluster is not ready;
    ``("", False)`` once it is, or when this site does not use it."""
    if not getattr(settings, "KUBERNETES_LOCAL_CLUSTER", False):
        return "", False
    layout = Layout.from_environment()
    state = cluster_status.read(layout)
    if state.ready:
        return "", False
    if state.working:
        minutes = (cluster_status.age(state) or 0) / 60
        detail = f" ({state.message})" if state.message else ""
        return (f"This machine is preparing its Kubernetes cluster{detail}. The first time takes about twenty "
                f"minutes; this page updates by itself." + (f" Last news {minutes:.0f} min ago." if minutes >= 1 else "")), True
    how = "run `make run` again, or `.venv/bin/python -m cluster up` (its output says what is wrong)"
    if state.phase == "absent":
        return f"The Kubernetes cluster of this machine has not been started: the person who runs this site should {how}.", False
    return f"The Kubernetes cluster of this machine is not running ({state.message}): the person who runs this site should {how}.", False
