"""Bring the local cluster up, stop it, restart one part, reset it; say how far it is.

``up`` is idempotent: a part that already runs with the same command and config is left alone,
one whose config changed is restarted, one that died is started. ``stop`` leaves nothing behind:
no pod process, no mount, no pod network, no firewall hook. State files survive a stop (``reset``
removes them), so the next ``up`` takes seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from . import addons, build, components, network_policy, node, pki
from .layout import NODE_NAME, Layout

MACHINE_CLAIM = Path("/run/tutorial-cluster.json")
API_WAIT = 90
NODE_WAIT = 120
DNS_WAIT = 120


class ClusterError(Exception):
    pass


class Cluster:
    def __init__(self, layout: Layout | None = None, progress: Callable[[str], None] | None = None):
        self.layout = layout or Layout.from_environment()
        self._echo = progress or (lambda message: print(message, flush=True))

    # -- progress the site can read ---------------------------------------------------------------
    def report(self, phase: str, message: str) -> None:
        self._echo(message)
        path = self.layout.progress_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"phase": phase, "message": message, "updated": time.time(), "pid": os.getpid()}))
        os.replace(tmp, path)

    @contextlib.contextmanager
    def _lock(self):
        self.layout.state.mkdir(parents=True, exist_ok=True)
        with open(self.layout.state / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ClusterError(f"another `python -m cluster` is working on {self.layout.state}; wait for it") from None
            yield

    # -- verbs ------------------------------------------------------------------------------------
    def up(self) -> None:
        """Build what is missing, then start everything and wait for a Ready node with DNS."""
        with self._lock():
            try:
                self._check_machine()
                self.report("building", "checking the cluster's programs")
                build.build_programs(self.layout, progress=lambda m: self.report("building", m))
                build.ensure_images(self.layout, progress=lambda m: self.report("building", m))
                self._start()
            except Exception as exc:
                self.report("failed", f"{type(exc).__name__}: {exc}")
                raise

    def build(self) -> None:
        with self._lock():
            build.build_programs(self.layout, progress=lambda m: self.report("building", m))

    def stop(self) -> None:
        with self._lock():
            self._stop()
            self.report("stopped", "the local cluster is stopped")

    def restart(self, name: str | None = None) -> None:
        with self._lock():
            if name:
                if name not in {c.name for c in self._components()}:
                    raise ClusterError(f"no component {name!r}; one of: {', '.join(c.name for c in self._components())}")
                node.stop(self.layout, name)
            else:
                self._stop()
            self._start()

    def reset(self) -> None:
        """Stop, then remove every state file (certificates, etcd, images on the node)."""
        with self._lock():
            self._stop()
            keep = self.layout.state / ".lock"
            for entry in self.layout.state.iterdir():
                if entry != keep:
                    node.unmount_under(entry)
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
            self._release_machine()
            self._echo("the local cluster's state is removed; `python -m cluster up` makes a new one")

    def describe(self) -> dict:
        parts = {c.name: bool(node.running(self.layout, c.name)) for c in self._components()}
        try:
            progress = json.loads(self.layout.progress_file.read_text())
        except (OSError, ValueError):
            progress = {}
        return {
            "state": str(self.layout.state), "programs": str(self.layout.bin),
            "built": (self.layout.bin / ".complete").is_file(), "server": self.layout.server,
            "kubeconfig": str(self.layout.admin_kubeconfig), "domain": self.layout.domain,
            "processes": parts, "progress": progress, "node_ready": self.node_ready() if parts.get("kube-apiserver") else False,
        }

    # -- the work ---------------------------------------------------------------------------------
    def _components(self) -> list[components.Component]:
        return components.all_components(self.layout, sys.executable)

    def _check_machine(self) -> None:
        problems = []
        if os.geteuid() != 0:
            problems.append("it must run as root (it starts containerd and a kubelet)")
        for program in ("/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2"):
            if not Path(program).exists():
                problems.append(f"{program} is missing (apt-get install containerd)")
        if not any(Path(d, "bridge").exists() for d in components.CNI_PLUGIN_DIRS):
            problems.append("the CNI plugins are missing (apt-get install containernetworking-plugins)")
        for tool in ("iptables", "conntrack", "ip", "docker"):
            if shutil.which(tool) is None:
                problems.append(f"{tool} is missing (apt-get install {'iproute2' if tool == 'ip' else 'docker.io' if tool == 'docker' else tool})")
        if problems:
            raise ClusterError("the local cluster cannot run here: " + "; ".join(problems))
        self._check_other_checkout()

    def _check_other_checkout(self) -> None:
        """Refuse to start while another checkout's node runs: both would take the same ports and subnet."""
        if MACHINE_CLAIM.is_file():
            try:
                other = Path(json.loads(MACHINE_CLAIM.read_text())["state"])
            except (OSError, ValueError, KeyError):
                other = None
            if other and other != self.layout.state and other.is_dir():
                other_layout = Layout(state=other, cache=self.layout.cache, subnet=self.layout.subnet, domain=self.layout.domain)
                if any(node.running(other_layout, name) for name in ("etcd", "kube-apiserver", "kubelet", "containerd")):
                    raise ClusterError(f"another checkout's cluster runs on this machine ({other}); stop it first: "
                                       f"cd {other.parent.parent} && .venv/bin/python -m cluster stop")

    def _claim_machine(self) -> None:
        with contextlib.suppress(OSError):
            MACHINE_CLAIM.write_text(json.dumps({"state": str(self.layout.state)}))

    def _release_machine(self) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if Path(json.loads(MACHINE_CLAIM.read_text())["state"]) == self.layout.state:
                MACHINE_CLAIM.unlink()

    def _start(self) -> None:
        layout = self.layout
        started = time.monotonic()
        self._claim_machine()
        self.report("starting", "making certificates and kubeconfigs")
        pki.ensure(layout)
        node.ensure_docker_network(layout)
        node.install_firewall(layout)
        if not node.running(layout, "containerd"):
            # Leftovers of a node that died without `stop` (a reboot, a killed session).
            node.kill_pod_processes(layout)
            node.unmount_under(layout.containerd_dir)
            node.unmount_under(layout.kubelet_dir)
            node.remove_pod_network(layout)
        by_name = {c.name: c for c in self._components()}
        for name in ("etcd", "kube-apiserver"):
            self._start_one(by_name[name])
        self._wait(lambda: self._api_get("/readyz") is not None, API_WAIT, "the API server to be ready", "kube-apiserver")
        for name in ("kube-controller-manager", "kube-scheduler", "containerd"):
            self._start_one(by_name[name])
        self._wait(lambda: layout.containerd_socket.exists(), 30, "containerd's socket", "containerd")
        for name in ("kubelet", "kube-proxy", "network-policy"):
            self._start_one(by_name[name])
        self.report("starting", "waiting for the node to be Ready")
        self._wait(self.node_ready, NODE_WAIT, f"node {NODE_NAME} to be Ready", "kubelet")
        self.report("starting", "starting CoreDNS")
        addons.apply(layout, addons.all_objects(layout))
        self._wait(self._dns_ready, DNS_WAIT, "CoreDNS to be ready", "kubelet")
        self.report("ready", f"the local cluster is ready at {layout.server} ({time.monotonic() - started:.1f} s); "
                             f"kubeconfig {layout.admin_kubeconfig}")

    def _start_one(self, component: components.Component) -> None:
        pid, now = node.start(self.layout, component)
        if now:
            self.report("starting", f"started {component.name} (pid {pid})")

    def _stop(self) -> None:
        layout = self.layout
        for component in reversed(self._components()):
            if component.name == "containerd":
                # Pods outlive the kubelet and containerd unless killed: a stopped node runs nothing.
                node.kill_pod_processes(layout)
            if node.stop(layout, component.name):
                self._echo(f"stopped {component.name}")
        node.kill_pod_processes(layout)
        node.unmount_under(layout.containerd_dir)
        node.unmount_under(layout.kubelet_dir)
        node.remove_pod_network(layout)
        node.remove_firewall()
        network_policy.remove(chain=node.NETPOL_CHAIN)
        self._release_machine()

    def _wait(self, ready: Callable[[], bool], seconds: float, what: str, log_of: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.25)
        log = self.layout.log_dir / f"{log_of}.log"
        raise ClusterError(f"gave up waiting {seconds:.0f} s for {what}; the end of {log}:\n{node.tail(log)}")

    # -- asking the API server --------------------------------------------------------------------
    def _api_get(self, path: str, timeout: float = 3) -> dict | str | None:
        pki_dir = self.layout.pki
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        context.load_cert_chain(str(pki_dir / "client-admin.crt"), str(pki_dir / "client-admin.key"))
        try:
            with urllib.request.urlopen(f"{self.layout.server}{path}", context=context, timeout=timeout) as answer:
                body = answer.read().decode()
        except (urllib.error.URLError, OSError, ssl.SSLError, ValueError):
            return None
        try:
            return json.loads(body)
        except ValueError:
            return body

    def node_ready(self) -> bool:
        answer = self._api_get(f"/api/v1/nodes/{NODE_NAME}")
        if not isinstance(answer, dict):
            return False
        conditions = answer.get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _dns_ready(self) -> bool:
        answer = self._api_get("/apis/apps/v1/namespaces/kube-system/deployments/coredns")
        return isinstance(answer, dict) and (answer.get("status", {}).get("availableReplicas") or 0) >= 1
