"""Where the local cluster keeps its files, and the addresses it uses.

State (certificates, etcd, containerd, kubelet, logs, pid files) lives under ``data/cluster`` of
the checkout; the built programs are cached per user under ``~/.cache/tutorial-cluster``, so a
fresh clone reuses them. Environment variables move either, and set the node's subnet and the
cluster domain.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = Path(__file__).resolve().parent

NODE_NAME = "tutorial-node"
CLUSTER_NAME = "tutorial"
API_PORT = 6443
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
# The Docker network whose gateway is the node: the learners' toolboxes reach the API server there.
DOCKER_NETWORK = "tutorial-cluster"
DOCKER_BRIDGE = "tutorial-k8s0"
CNI_BRIDGE = "tutorial-cni0"
DEFAULT_SUBNET = "172.30.99.0/24"
DEFAULT_DOMAIN = "cluster.local"
# The images the node pulls come from the classroom registry (scripts/start-registry.sh).
REGISTRY = "127.0.0.1:5000"
REGISTRY_NAMES = ("localhost:5000", "127.0.0.1:5000")

_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def read_versions(path: Path = SOURCES / "versions.env") -> dict[str, str]:
    versions = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


@dataclass(frozen=True)
class Layout:
    state: Path
    cache: Path
    subnet: ipaddress.IPv4Network
    domain: str

    @classmethod
    def from_environment(cls, environ=os.environ) -> "Layout":
        state = Path(environ.get("TUTORIAL_CLUSTER_DIR") or REPO / "data" / "cluster")
        cache = Path(environ.get("TUTORIAL_CLUSTER_CACHE") or Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tutorial-cluster")
        try:
            subnet = ipaddress.ip_network(environ.get("TUTORIAL_CLUSTER_SUBNET") or DEFAULT_SUBNET)
        except ValueError as exc:
            raise ValueError(f"TUTORIAL_CLUSTER_SUBNET: {exc}") from exc
        if subnet.version != 4 or subnet.num_addresses < 8:
            raise ValueError(f"TUTORIAL_CLUSTER_SUBNET must be an IPv4 network of at least 8 addresses, not {subnet}")
        domain = (environ.get("TUTORIAL_CLUSTER_DOMAIN") or DEFAULT_DOMAIN).lower().rstrip(".")
        if not _DOMAIN.match(domain):
            raise ValueError(f"TUTORIAL_CLUSTER_DOMAIN {domain!r} is not a DNS name")
        return cls(state=state.resolve(), cache=cache.resolve(), subnet=subnet, domain=domain)

    # -- addresses --------------------------------------------------------------------------------
    @property
    def node_ip(self) -> str:
        return str(next(self.subnet.hosts()))

    @property
    def server(self) -> str:
        return f"https://{self.node_ip}:{API_PORT}"

    # -- the programs -----------------------------------------------------------------------------
    @property
    def versions(self) -> dict[str, str]:
        return read_versions()

    @property
    def bin(self) -> Path:
        v = self.versions
        return self.cache / "bin" / f"k8s-{v['KUBERNETES_VERSION']}-etcd-{v['ETCD_VERSION']}-coredns-{v['COREDNS_VERSION']}"

    def program(self, name: str) -> Path:
        return self.bin / name

    # -- state ------------------------------------------------------------------------------------
    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    def kubeconfig(self, component: str) -> Path:
        return self.state / "kubeconfigs" / f"{component}.kubeconfig"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def containerd_dir(self) -> Path:
        return self.state / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def kubelet_dir(self) -> Path:
        return self.state / "kubelet"

    @property
    def cni_config_dir(self) -> Path:
        return self.state / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.state / "cni" / "ipam"

    @property
    def config_dir(self) -> Path:
        return self.state / "config"

    @property
    def run_dir(self) -> Path:
        return self.state / "run"

    @property
    def log_dir(self) -> Path:
        return self.state / "logs"

    @property
    def progress_file(self) -> Path:
        """What ``python -m cluster up`` is doing now, for the site to show (status.py)."""
        return self.state / "progress.json"
