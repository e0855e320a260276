"""The node's host side: processes with pid files, the Docker network, the firewall, and cleanup.

Processes are started in their own session with output to ``logs/<name>.log`` and a pid file
holding the pid, the command and the component's fingerprint. A pid file whose process is gone,
or is now some other program, counts as not running (a machine that rebooted leaves such files).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import network_policy
from .components import Component
from .layout import CNI_BRIDGE, DOCKER_BRIDGE, DOCKER_NETWORK, POD_CIDR, REPO, SERVICE_CIDR, Layout

COMMAND_TIMEOUT = 30


class NodeError(Exception):
    pass


# -- processes ------------------------------------------------------------------------------------
def pid_file(layout: Layout, name: str) -> Path:
    return layout.run_dir / f"{name}.pid"


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def running(layout: Layout, name: str) -> dict | None:
    """The pid file's record when its process still runs that command, else ``None``."""
    try:
        record = json.loads(pid_file(layout, name).read_text())
    except (OSError, ValueError):
        return None
    pid = record.get("pid")
    if isinstance(pid, int) and _alive(pid) and _cmdline(pid) == list(record.get("argv", [])):
        return record
    return None


def start(layout: Layout, component: Component) -> tuple[int, bool]:
    """Start the component unless it runs with the same fingerprint; return (pid, started now)."""
    record = running(layout, component.name)
    if record and record.get("fingerprint") == component.fingerprint:
        return record["pid"], False
    if record:
        stop(layout, component.name)
    for path, content in component.files.items():
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_text() != content:
            target.write_text(content)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = layout.log_dir / f"{component.name}.log"
    if log_path.is_file() and log_path.stat().st_size > 20 * 1024 * 1024:
        log_path.replace(log_path.with_suffix(".log.1"))
    env = {**os.environ, "PYTHONPATH": str(REPO), **component.env}
    with open(log_path, "ab") as log:
        log.write(f"\n--- started {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log.flush()
        process = subprocess.Popen(list(component.argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=REPO, env=env, start_new_session=True)
    # Wait for the exec, so the pid file records the program's own command line.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _cmdline(process.pid)[:1] != [component.argv[0]] and process.poll() is None:
        time.sleep(0.02)
    pid_file(layout, component.name).write_text(json.dumps({
        "pid": process.pid, "argv": _cmdline(process.pid) or list(component.argv), "fingerprint": component.fingerprint,
        "started": time.time(),
    }))
    time.sleep(0.2)
    if process.poll() is not None:
        raise NodeError(f"{component.name} exited at once (code {process.returncode}); its log: {log_path}\n{tail(log_path)}")
    return process.pid, True


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(layout: Layout, name: str, timeout: float = 15) -> bool:
    """Stop the component if it runs (TERM, then KILL); True when a process was stopped."""
    record = running(layout, name)
    pid_file(layout, name).unlink(missing_ok=True)
    if not record:
        return False
    pid = record["pid"]
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        _signal_group(pid, signal.SIGKILL)
        while _alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return True


def _signal_group(pid: int, signo: int) -> None:
    try:
        os.killpg(pid, signo)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signo)
        except ProcessLookupError:
            pass


# -- commands -------------------------------------------------------------------------------------
def run(*argv: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise NodeError(f"{' '.join(argv)} did not finish in {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise NodeError(f"{argv[0]} is not installed") from exc
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed: {(result.stderr or result.stdout).strip()}")
    return result


# -- the Docker network the toolboxes join --------------------------------------------------------
def ensure_docker_network(layout: Layout) -> None:
    """The node's address is this network's gateway, so it exists on this machine from now on."""
    found = run("docker", "network", "inspect", DOCKER_NETWORK, "--format", "{{json .IPAM.Config}}", check=False)
    if found.returncode == 0:
        config = json.loads(found.stdout or "[]") or []
        if any(c.get("Subnet") == str(layout.subnet) for c in config):
            return
        raise NodeError(f"The Docker network {DOCKER_NETWORK} exists with another subnet ({found.stdout.strip()}); "
                        f"remove it (docker network rm {DOCKER_NETWORK}) or set TUTORIAL_CLUSTER_SUBNET to match.")
    run("docker", "network", "create", "--driver", "bridge", "--subnet", str(layout.subnet), "--gateway", layout.node_ip,
        # Toolboxes of different learners never talk to each other.
        "-o", "com.docker.network.bridge.enable_icc=false", "-o", f"com.docker.network.bridge.name={DOCKER_BRIDGE}",
        "--label", "tutorial.cluster=node", DOCKER_NETWORK)
    deadline = time.monotonic() + 10
    while layout.node_ip not in run("ip", "-4", "-o", "addr", "show", "dev", DOCKER_BRIDGE, check=False).stdout:
        if time.monotonic() > deadline:
            raise NodeError(f"The bridge {DOCKER_BRIDGE} did not get the node address {layout.node_ip}")
        time.sleep(0.2)


# -- the firewall ---------------------------------------------------------------------------------
PRE_CHAIN = "TUTORIAL-NODE-PRE"   # mangle PREROUTING: where pods and toolboxes may send at all
INPUT_CHAIN = "TUTORIAL-NODE"     # filter INPUT: what of the node they may reach
FORWARD_CHAIN = "TUTORIAL-NODE-FWD"  # filter FORWARD (via DOCKER-USER): pod to pod, through the NetworkPolicy chain
NETPOL_CHAIN = network_policy.ENTRY_CHAIN
IPV6_CHAIN = "TUTORIAL-NODE-V6"   # ip6tables filter INPUT and FORWARD: the cluster is IPv4 only


def firewall_rules(layout: Layout) -> dict[str, list[list[str]]]:
    """Rules per (table, chain). Decided before address translation (mangle PREROUTING), so a NodePort
    or a Service address cannot be used to get around them: pods may reach pods, Services and the
    API server; toolboxes only the API server; neither anything else on the node or off it."""
    node, subnet, api = layout.node_ip, str(layout.subnet), "6443"
    api_rule = ["-d", node, "-p", "tcp", "--dport", api, "-j", "RETURN"]
    established = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"]
    return {
        f"mangle {PRE_CHAIN}": [
            ["-i", "lo", "-j", "RETURN"],
            ["-s", subnet, *api_rule],
            ["-s", subnet, *established],
            ["-s", subnet, "-j", "DROP"],
            ["-s", POD_CIDR, "-d", POD_CIDR, "-j", "RETURN"],
            ["-s", POD_CIDR, "-d", SERVICE_CIDR, "-j", "RETURN"],
            ["-s", POD_CIDR, *api_rule],
            ["-s", POD_CIDR, *established],
            ["-s", POD_CIDR, "-j", "DROP"],
        ],
        f"filter {INPUT_CHAIN}": [
            ["-i", "lo", "-j", "RETURN"],
            ["-s", POD_CIDR, *api_rule],
            ["-s", POD_CIDR, *established],
            ["-s", POD_CIDR, "-j", "DROP"],
            ["-s", subnet, *api_rule],
            ["-s", subnet, *established],
            ["-s", subnet, "-j", "DROP"],
        ],
        f"filter {FORWARD_CHAIN}": [
            ["-s", POD_CIDR, "-d", POD_CIDR, "-j", NETPOL_CHAIN],
            ["-s", POD_CIDR, "-d", POD_CIDR, "-j", "ACCEPT"],
            # A Service address left untranslated has no endpoints: say so at once.
            ["-s", POD_CIDR, "-d", SERVICE_CIDR, "-j", "REJECT"],
            ["-s", POD_CIDR, "-j", "DROP"],
            ["-d", POD_CIDR, "-j", "DROP"],
            ["-s", subnet, "-j", "DROP"],
        ],
    }


def ipv6_firewall_rules() -> list[list[str]]:
    """Pods get IPv6 link-local addresses on the CNI bridge, and every rule above (and the
    NetworkPolicy chain) is IPv4: without these, one learner's pod reaches another's, and the node,
    over fe80:: unfiltered. The cluster has no IPv6, so nothing from its bridges is let through."""
    return [["-i", CNI_BRIDGE, "-j", "DROP"], ["-i", DOCKER_BRIDGE, "-j", "DROP"]]


def install_ipv6_firewall() -> None:
    if not Path("/proc/sys/net/ipv6").exists():
        return  # no IPv6 in this kernel: nothing to close
    if run("ip6tables", "-t", "filter", "-S", IPV6_CHAIN, check=False).returncode != 0:
        run("ip6tables", "-t", "filter", "-N", IPV6_CHAIN)
    run("ip6tables", "-t", "filter", "-F", IPV6_CHAIN)
    for rule in ipv6_firewall_rules():
        run("ip6tables", "-t", "filter", "-A", IPV6_CHAIN, *rule)
    for parent in ("INPUT", "FORWARD"):
        while run("ip6tables", "-t", "filter", "-D", parent, "-j", IPV6_CHAIN, check=False).returncode == 0:
            pass
        run("ip6tables", "-t", "filter", "-I", parent, "1", "-j", IPV6_CHAIN)


def _hooks() -> list[tuple[str, str, str]]:
    """(table, built-in or Docker chain, our chain), each jump placed first."""
    forward_parent = "DOCKER-USER" if run("iptables", "-t", "filter", "-S", "DOCKER-USER", check=False).returncode == 0 else "FORWARD"
    return [("mangle", "PREROUTING", PRE_CHAIN), ("filter", "INPUT", INPUT_CHAIN), ("filter", forward_parent, FORWARD_CHAIN)]


def install_firewall(layout: Layout) -> None:
    # The NetworkPolicy chain exists before anything jumps to it, dropping pod-to-pod traffic
    # until the enforcer's first sync fills it.
    network_policy.ensure_entry_chain(chain=NETPOL_CHAIN)
    for key, rules in firewall_rules(layout).items():
        table, chain = key.split()
        if run("iptables", "-t", table, "-S", chain, check=False).returncode != 0:
            run("iptables", "-t", table, "-N", chain)
        run("iptables", "-t", table, "-F", chain)
        for rule in rules:
            run("iptables", "-t", table, "-A", chain, *rule)
    for table, parent, chain in _hooks():
        while run("iptables", "-t", table, "-D", parent, "-j", chain, check=False).returncode == 0:
            pass
        run("iptables", "-t", table, "-I", parent, "1", "-j", chain)
    install_ipv6_firewall()


def remove_firewall() -> None:
    """Unhook and delete the node's chains (the NetworkPolicy chain is the enforcer's to delete)."""
    for table, parent, chain in _hooks():
        while run("iptables", "-t", table, "-D", parent, "-j", chain, check=False).returncode == 0:
            pass
    for table, chain in (("mangle", PRE_CHAIN), ("filter", INPUT_CHAIN), ("filter", FORWARD_CHAIN)):
        run("iptables", "-t", table, "-F", chain, check=False)
        run("iptables", "-t", table, "-X", chain, check=False)
    remove_ipv6_firewall()


def remove_ipv6_firewall() -> None:
    if not Path("/proc/sys/net/ipv6").exists():
        return
    for parent in ("INPUT", "FORWARD"):
        while run("ip6tables", "-t", "filter", "-D", parent, "-j", IPV6_CHAIN, check=False).returncode == 0:
            pass
    run("ip6tables", "-t", "filter", "-F", IPV6_CHAIN, check=False)
    run("ip6tables", "-t", "filter", "-X", IPV6_CHAIN, check=False)


# -- cleanup --------------------------------------------------------------------------------------
def _in_pod_cgroup(pid: int) -> bool:
    try:
        return "/kubepods" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def kill_pod_processes(layout: Layout) -> int:
    """Kill every process of a pod and this node's containerd shims; the number killed."""
    socket = str(layout.containerd_socket)
    killed = 0
    for _ in range(3):
        victims = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            argv = _cmdline(pid)
            if _in_pod_cgroup(pid) or (argv and argv[0].endswith("containerd-shim-runc-v2") and socket in argv):
                victims.append(pid)
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.3)
    return killed


def _mounts_at_or_under(folder: Path) -> list[str]:
    try:
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    except OSError:
        return []
    top = str(folder).rstrip("/")
    # mountinfo escapes spaces and the like as octal (\040).
    decoded = {re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), m) for m in mounts}
    # The folder itself too: the kubelet mounts its root folder on itself (shared propagation).
    return sorted((m for m in decoded if m == top or m.startswith(top + "/")), key=len, reverse=True)


def unmount_under(folder: Path) -> int:
    """Lazily unmount everything mounted at or below the folder, deepest first (pods leave many
    mounts, some stacked on one another: repeat until none is left)."""
    count = 0
    for _ in range(5):
        mine = _mounts_at_or_under(folder)
        if not mine:
            break
        for mount in mine:
            run("umount", "-l", mount, check=False)
        count += len(mine)
    return count


def _remove_netns_file(entry: Path) -> None:
    """Unmount and remove one pod's network namespace file.

    The first `ip netns add` on a machine makes /run/netns a bind mount of itself. A namespace the
    CNI plugin mounted there before that is then hidden under the bind: umount says "not mounted"
    and unlink says "busy". Lift the bind (lazily: namespaces in use stay alive) and try again."""
    for _ in range(3):
        run("umount", "-l", str(entry), check=False)
        try:
            entry.unlink(missing_ok=True)
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
        folder = str(entry.parent.resolve())
        if folder in _mounts_at_or_under(Path(folder)):
            run("umount", "-l", folder, check=False)
    entry.unlink(missing_ok=True)


def remove_pod_network(layout: Layout) -> None:
    """The pod bridge, the pods' network namespaces and the address leases: a stopped node holds none."""
    netns = Path("/var/run/netns")
    if netns.is_dir():
        for entry in netns.glob("cni-*"):
            _remove_netns_file(entry)
    if Path(f"/sys/class/net/{CNI_BRIDGE}").exists():
        run("ip", "link", "delete", CNI_BRIDGE, check=False)
    shutil.rmtree(layout.cni_ipam_dir, ignore_errors=True)
