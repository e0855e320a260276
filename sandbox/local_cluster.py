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
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return False  # the site runs as a pod: its cluster is the one it runs on (in-cluster credentials)
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


def _state(settings):
    if not getattr(settings, "KUBERNETES_LOCAL_CLUSTER", False):
        return None
    state = cluster_status.read(Layout.from_environment())
    return None if state.ready else state


def problem(settings) -> tuple[str, bool]:
    """(what a learner reads, whether it is on its way) while the local cluster is not ready;
    ``("", False)`` once it is, or when this site does not use it. Learners get no operator
    detail (commands, paths); ``operator_problem`` has it, for the doctor and the logs."""
    from django.utils.translation import gettext

    state = _state(settings)
    if state is None:
        return "", False
    if state.working:
        return gettext("The Kubernetes lessons are getting ready: this machine is preparing its cluster "
                       "(the first time takes about twenty minutes). This page updates by itself."), True
    return gettext("The Kubernetes lessons are not available right now: this machine's cluster is not "
                   "running. Tell your instructor; the Docker lessons work meanwhile."), False


def operator_problem(settings) -> tuple[str, bool]:
    """The same, for the person who runs the site: what the cluster is doing, and what to run."""
    state = _state(settings)
    if state is None:
        return "", False
    if state.working:
        minutes = (cluster_status.age(state) or 0) / 60
        news = f"; last news {minutes:.0f} min ago" if minutes >= 1 else ""
        return f"the local cluster is being prepared: {state.message or state.phase}{news}", True
    if state.phase == "absent":
        return "the local cluster has not been started on this machine", False
    return f"the local cluster is not running ({state.message})", False
