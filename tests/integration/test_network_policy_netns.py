"""The enforcer's chains on the real kernel: network namespaces as pods, real TCP connections.

Everything lives in network namespaces this test creates: a "node" namespace holding a bridge (with
br_netfilter, bridged IPv4 crosses its FORWARD chain, as on the cluster's CNI bridge) and one
namespace per pod with a veth on that bridge. The node namespace has its own, empty firewall, so
hooking the jump there disturbs nobody's rules, and the chains carry a prefix of the test's own.
Needs root, ``ip`` and ``iptables``; under CI a missing part fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import secrets
import select
import shutil
import subprocess
import sys

import pytest

from cluster.network_policy import apply, compute_rules, ensure_entry_chain, existing_chains, pod_chain, remove

IN_CI = bool(os.environ.get("CI"))
SUBNET = "10.123.45"
SERVER = r"""
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    ready.release()
    while True:
        c, _ = s.accept(); c.sendall(b"hello %d\n" % port); c.close()
ports = [int(p) for p in sys.argv[1:]]
ready = threading.Semaphore(0)
for p in ports: threading.Thread(target=serve, args=(p,), daemon=True).start()
for p in ports: ready.acquire()
print("ready", flush=True)
sys.stdin.read()
"""
CLIENT = r"""
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    s.settimeout(float(sys.argv[3])); data = s.recv(64)
except OSError as exc:
    print(exc); sys.exit(1)
sys.exit(0 if data.startswith(b"hello") else 1)
"""
# A DROPped SYN never gets an answer; an allowed one is answered in well under a second here.
DENIED_AFTER_SECONDS = 1.5

# The pods of the scenario: name -> (namespace, labels, named container ports, listening ports).
PODS = {
    "web": ("shop", {"app": "web"}, [("http", "TCP", 8080)], [8080, 9090]),
    "client": ("shop", {"app": "client"}, [], [8080]),
    "guest": ("guest", {"app": "client"}, [], []),
}
NAMESPACES = [
    {"metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop", "team": "blue"}}},
    {"metadata": {"name": "guest", "labels": {"kubernetes.io/metadata.name": "guest", "team": "red"}}},
]


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def require_tools() -> None:
    missing = [tool for tool in ("ip", "iptables", "iptables-restore", "iptables-save") if not shutil.which(tool)]
    problem = f"missing {', '.join(missing)}" if missing else None
    if os.geteuid() != 0:
        problem = "needs root (network namespaces and iptables)"
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)


class Lab:
    """A node namespace with a bridge, and one namespace per pod (plus one the enforcer never hears of)."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.node = f"tnp-{self.tag}-node"
        self.chain = f"TNPT-{self.tag}"
        self.bridge = "tnpbr0"
        self.netns: dict[str, str] = {}
        self.ips: dict[str, str] = {}
        self.servers: list[subprocess.Popen] = []
        self.hook = ["FORWARD", "-s", f"{SUBNET}.0/24", "-d", f"{SUBNET}.0/24", "-j", self.chain]

    def node_cmd(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.node, *argv]

    def build(self) -> None:
        run("ip", "netns", "add", self.node)
        run("ip", "-n", self.node, "link", "add", self.bridge, "type", "bridge")
        run("ip", "-n", self.node, "link", "set", self.bridge, "up")
        # The same setting the cluster's node runs with; per network namespace in this kernel.
        run(*self.node_cmd("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"))
        for index, name in enumerate([*PODS, "stranger"]):
            netns, ip = f"tnp-{self.tag}-{name}", f"{SUBNET}.{index + 10}"
            run("ip", "netns", "add", netns)
            self.netns[name], self.ips[name] = netns, ip
            run("ip", "-n", self.node, "link", "add", f"v{name}", "type", "veth", "peer", "name", "eth0", "netns", netns)
            run("ip", "-n", self.node, "link", "set", f"v{name}", "master", self.bridge, "up")
            run("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
            run("ip", "-n", netns, "link", "set", "eth0", "up")
            run("ip", "-n", netns, "link", "set", "lo", "up")
        for name, (_, _, _, listening) in {**PODS, "stranger": (None, None, None, [8080])}.items():
            if listening:
                self.serve(name, listening)

    def serve(self, name: str, ports: list[int]) -> None:
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.netns[name], sys.executable, "-c", SERVER, *map(str, ports)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.servers.append(server)
        ready, _, _ = select.select([server.stdout], [], [], 10)
        assert ready and server.stdout.readline().strip() == "ready", f"server in {name} did not start"

    def connects(self, src: str, dst: str, port: int) -> bool:
        done = subprocess.run(
            ["ip", "netns", "exec", self.netns[src], sys.executable, "-c", CLIENT,
             self.ips[dst], str(port), str(DENIED_AFTER_SECONDS)],
            capture_output=True, text=True, timeout=30, check=False,
        )
        return done.returncode == 0

    def pods_json(self) -> list[dict]:
        return [
            {
                "metadata": {"name": name, "namespace": namespace, "uid": f"{self.tag}-{name}", "labels": labels},
                "spec": {"containers": [{"name": "main", "ports": [
                    {"name": n, "protocol": p, "containerPort": c} for n, p, c in ports]}]},
                "status": {"phase": "Running", "podIP": self.ips[name], "podIPs": [{"ip": self.ips[name]}]},
            }
            for name, (namespace, labels, ports, _) in PODS.items()
        ]

    def iptables(self) -> dict:
        return {"chain": self.chain, "iptables": self.node_cmd("iptables-restore"),
                "iptables_save": self.node_cmd("iptables-save")}

    def enforce(self, policies: list[dict]) -> None:
        apply(compute_rules(self.pods_json(), NAMESPACES, policies, chain=self.chain), **self.iptables())

    def hook_jump(self) -> None:
        # The node firewall's side of the contract: jump for pod-to-pod traffic, accept on RETURN.
        run(*self.node_cmd("iptables", "-P", "FORWARD", "DROP"))
        run(*self.node_cmd("iptables", "-A", *self.hook))
        run(*self.node_cmd("iptables", "-A", "FORWARD", "-s", f"{SUBNET}.0/24", "-d", f"{SUBNET}.0/24", "-j", "ACCEPT"))

    def unhook_jump(self) -> None:
        run(*self.node_cmd("iptables", "-D", *self.hook))

    def destroy(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait(timeout=10)
        # Deleting a namespace deletes its veth end, its bridge and its firewall with it.
        for netns in [*self.netns.values(), self.node]:
            run("ip", "netns", "del", netns, check=False)


@pytest.fixture
def lab():
    require_tools()
    lab = Lab()
    try:
        lab.build()
        yield lab
    finally:
        lab.destroy()
    assert not any(name.startswith(f"tnp-{lab.tag}-") for name in run("ip", "netns", "list").stdout.split())


WEB_FROM_CLIENTS = {
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"port": "http"}]}],
    },
}
WEB_FROM_CLIENTS_AND_RED_TEAM = {
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}},
                              {"namespaceSelector": {"matchLabels": {"team": "red"}}}],
                     "ports": [{"port": "http"}]}],
    },
}


def test_policies_decide_which_real_connections_get_through(lab):
    ensure_entry_chain(**lab.iptables())
    lab.hook_jump()
    assert not lab.connects("client", "web", 8080), "before the first sync pod traffic must be dropped"

    lab.enforce([WEB_FROM_CLIENTS])
    assert lab.connects("client", "web", 8080), "the named port http of a client in the namespace is allowed"
    assert not lab.connects("client", "web", 9090), "a port the policy does not name is denied"
    assert not lab.connects("guest", "web", 8080), "a pod selector means the policy's own namespace"
    assert not lab.connects("web", "client", 8080), "web is isolated for egress with no egress rules"
    assert lab.connects("guest", "client", 8080), "pods no policy selects talk freely"
    assert not lab.connects("stranger", "client", 8080), "an unknown source is dropped"
    assert not lab.connects("client", "stranger", 8080), "an unknown destination is dropped"
    web_egress = pod_chain(lab.chain, "E", f"{lab.tag}-web")
    assert web_egress in existing_chains(chain=lab.chain, iptables_save=lab.node_cmd("iptables-save"))

    lab.enforce([WEB_FROM_CLIENTS_AND_RED_TEAM])
    assert lab.connects("guest", "web", 8080), "the red team's namespace is now allowed"
    assert lab.connects("web", "client", 8080), "web is no longer isolated for egress"
    assert not lab.connects("guest", "web", 9090)
    assert web_egress not in existing_chains(chain=lab.chain, iptables_save=lab.node_cmd("iptables-save"))

    lab.unhook_jump()
    remove(**lab.iptables())
    assert existing_chains(chain=lab.chain, iptables_save=lab.node_cmd("iptables-save")) == []


def test_the_chains_of_another_prefix_are_left_alone(lab):
    other = f"TNPO-{lab.tag}"
    apply(compute_rules(lab.pods_json(), NAMESPACES, [], chain=other), chain=other,
          iptables=lab.node_cmd("iptables-restore"), iptables_save=lab.node_cmd("iptables-save"))
    lab.enforce([WEB_FROM_CLIENTS])
    remove(**lab.iptables())
    save = lab.node_cmd("iptables-save")
    assert existing_chains(chain=lab.chain, iptables_save=save) == []
    assert set(existing_chains(chain=other, iptables_save=save)) == {other, f"{other}-SRC", f"{other}-DST"}
