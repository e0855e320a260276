"""The local cluster as an operator sees it: it listens on this machine only, `stop` leaves nothing
running, mounted or hooked, and `up` after a crash (processes killed, pid files and mounts left
behind) brings back a working node. These stop and start the shared cluster; each test leaves it up."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from cluster import node
from cluster.control import Cluster
from cluster.layout import CNI_BRIDGE, Layout
from tests.kubernetes.real_cluster import KUBECONFIG

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet", "kube-proxy")


@pytest.fixture
def cluster():
    layout = Layout.from_environment()
    if not KUBECONFIG or layout.admin_kubeconfig.resolve() != Path(KUBECONFIG).resolve():
        pytest.fail(f"these tests stop and start this machine's local cluster; TUTORIAL_TEST_KUBECONFIG must be "
                    f"{layout.admin_kubeconfig} (it is {KUBECONFIG or 'not set'})")
    cluster = Cluster(layout, progress=lambda message: None)
    cluster.up()
    yield cluster
    cluster.up()


def _iptables_hooks() -> str:
    return "\n".join(subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout
                     for table in ("filter", "mangle"))


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder) + "/"
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines() if line.split()[4].startswith(prefix)]


def _pod_processes() -> list[int]:
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if "/kubepods" in Path(f"/proc/{process.pid}/cgroup").read_text():
                found.append(process.pid)
        except OSError:
            pass
    return found


def test_every_port_of_the_cluster_is_on_loopback_or_the_node_address(cluster):
    allowed = {"127.0.0.1", cluster.layout.node_ip}
    for name in PROCESSES:
        record = node.running(cluster.layout, name)
        assert record, f"{name} is not running"
        listening = [c.laddr for c in psutil.Process(record["pid"]).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert all(address.ip in allowed for address in listening), (name, listening)


def test_stop_leaves_nothing_behind_and_up_brings_it_back(cluster):
    assert _pod_processes(), "CoreDNS should be running before the stop"
    cluster.stop()
    layout = cluster.layout
    assert not any(node.running(layout, name) for name in PROCESSES)
    assert _pod_processes() == []
    assert _mounts_under(layout.state) == []
    assert not Path(f"/sys/class/net/{CNI_BRIDGE}").exists()
    assert "TUTORIAL-NODE" not in _iptables_hooks() and "TUTORIAL-NETPOL" not in _iptables_hooks()
    cluster.stop()  # a second stop is harmless
    started = time.monotonic()
    cluster.up()
    assert cluster.node_ready() and time.monotonic() - started < 120


def test_up_after_a_crash_with_stale_pid_files_and_mounts(cluster):
    layout = cluster.layout
    # A crash: the node's processes die at once; their pid files, the pods' processes and mounts stay.
    for name in ("kubelet", "containerd", "kube-apiserver", "etcd"):
        os.kill(node.running(layout, name)["pid"], signal.SIGKILL)
    time.sleep(1)
    assert all(node.pid_file(layout, name).exists() for name in ("kubelet", "containerd"))
    assert not node.running(layout, "containerd")
    cluster.up()
    assert cluster.node_ready()
    for name in PROCESSES:
        assert node.running(layout, name), name
    etcds = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and p.info["cmdline"][0] == str(layout.program("etcd"))]
    assert len(etcds) == 1
