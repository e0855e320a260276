"""NetworkPolicy (networking.k8s.io/v1) for the local cluster, enforced with iptables.

The cluster's CNI (Debian's bridge + host-local plugins) has no NetworkPolicy support. With
br_netfilter on, pod-to-pod traffic on the CNI bridge crosses the filter table's FORWARD chain; the
node firewall jumps to our entry chain (``TUTORIAL-NETPOL``) for every forwarded packet whose source
and destination are both in the pod CIDR. The contract with that caller:

- our chain RETURNs what is allowed (the caller then ACCEPTs) and DROPs what is denied;
- the caller hooks the jump and unhooks it before :func:`remove`; we never touch a chain that is
  not ours (ours: the entry chain and every chain named ``<entry>-...``).

Chains written by :func:`compute_rules` (``E`` = entry chain name)::

    E          -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
               -j E-SRC                      unknown source IP       -> DROP
               -j E-DST                      unknown destination IP  -> DROP
               -s <pod ip>/32 -j E-E-<hash>  per pod isolated for egress
               -d <pod ip>/32 -j E-I-<hash>  per pod isolated for ingress
    E-SRC      -s <pod ip>/32 -j RETURN ... -j DROP
    E-DST      -d <pod ip>/32 -j RETURN ... -j DROP
    E-E-<h>    [-d <peer ip>/32] [-p <proto> [-m <proto> --dport N[:M]]] -j RETURN ... -j DROP
    E-I-<h>    [-s <peer ip>/32] [-p <proto> [-m <proto> --dport N[:M]]] -j RETURN ... -j DROP

A packet is allowed iff the source's egress AND the destination's ingress allow it. A pod that no
policy selects for a direction is not isolated in it. Fail closed: a pod IP the enforcer does not
know yet (a pod that just started) is dropped until the next sync.

Semantics follow the Kubernetes API reference for NetworkPolicy, with these choices where the
reference leaves room or where the API server would have refused the input:

- only pods with an IP in phase Pending or Running count; hostNetwork pods are ignored; IPv6
  addresses are ignored (this is the IPv4 table);
- ``ipBlock`` peers match the known pod IPs inside ``cidr`` and outside every ``except`` (any other
  address is dropped anyway, being unknown);
- a named port resolves against the destination pod's ``containers[*].ports`` by name and protocol;
  a port that does not resolve allows nothing;
- an unknown selector operator, protocol or an invalid port range matches nothing (refused rather
  than guessed), so a malformed rule can only deny, never widen.

Run the enforcer: ``python -m cluster.network_policy --kubeconfig PATH [--once] [--resync SECONDS]``.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("cluster.network_policy")

ENTRY_CHAIN = "TUTORIAL-NETPOL"
# iptables refuses chain names of 29 characters or more; the per-pod chains need room for a hash.
MAX_CHAIN_NAME = 28
MIN_HASH_CHARS = 8
COUNTED_PHASES = ("Pending", "Running")
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


# --- the pure part: API objects in, iptables-restore lines out ---------------------------------


@dataclass(frozen=True)
class KnownPod:
    """A pod that traffic can come from or go to: it has an IPv4 address and counts."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    ips: tuple[str, ...]
    container_ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port)


def check_chain_name(chain: str) -> None:
    if not chain or len(chain) + 3 + MIN_HASH_CHARS > MAX_CHAIN_NAME or not all(
        c.isalnum() or c in "-_" for c in chain
    ):
        raise ValueError(
            f"entry chain name {chain!r} must be 1-{MAX_CHAIN_NAME - 3 - MIN_HASH_CHARS} "
            "characters of letters, digits, '-' or '_'"
        )


def is_our_chain(name: str, chain: str = ENTRY_CHAIN) -> bool:
    return name == chain or name.startswith(chain + "-")


def pod_chain(chain: str, direction: str, uid: str) -> str:
    """``<chain>-I-<hash>`` / ``<chain>-E-<hash>``: stable per pod uid, at most 28 characters."""
    width = MAX_CHAIN_NAME - len(chain) - 3
    return f"{chain}-{direction}-{hashlib.sha256(uid.encode()).hexdigest()[:width]}"


def known_pods(pods: Iterable[Mapping]) -> list[KnownPod]:
    """The pods that count, in a stable order (namespace, name, uid)."""
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        if spec.get("hostNetwork") or status.get("phase") not in COUNTED_PHASES:
            continue
        addresses = [entry.get("ip") for entry in status.get("podIPs") or []] or [status.get("podIP")]
        ips = tuple(dict.fromkeys(ip for ip in addresses if ip and _is_ipv4(ip)))
        if not ips:
            continue
        ports = tuple(
            (port["name"], port.get("protocol") or "TCP", int(port["containerPort"]))
            for container in spec.get("containers") or []
            for port in container.get("ports") or []
            if port.get("name") and port.get("containerPort")
        )
        out.append(
            KnownPod(
                namespace=meta.get("namespace") or "default",
                name=meta.get("name") or "",
                uid=meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}",
                labels=dict(meta.get("labels") or {}),
                ips=ips,
                container_ports=ports,
            )
        )
    return sorted(out, key=lambda p: (p.namespace, p.name, p.uid))


def selector_matches(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector: ``{}`` matches everything; all terms must hold."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            ok = False
        if not ok:
            return False
    return True


def policy_types(policy: Mapping) -> set[str]:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return set(types)
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def compute_rules(
    pods: Iterable[Mapping],
    namespaces: Iterable[Mapping],
    policies: Iterable[Mapping],
    *,
    chain: str = ENTRY_CHAIN,
) -> list[str]:
    """iptables-restore lines (filter table, without ``*filter``/``COMMIT``) for these objects.

    Pure and deterministic: the same objects give the same lines, so a caller can compare them to
    decide whether anything changed.
    """
    check_chain_name(chain)
    known = known_pods(pods)
    ns_labels = {
        (ns.get("metadata") or {}).get("name"): dict((ns.get("metadata") or {}).get("labels") or {})
        for ns in namespaces
    }
    ordered_policies = sorted(
        policies,
        key=lambda p: ((p.get("metadata") or {}).get("namespace") or "", (p.get("metadata") or {}).get("name") or ""),
    )

    src_chain, dst_chain = f"{chain}-SRC", f"{chain}-DST"
    declared = [chain, src_chain, dst_chain]
    entry = [
        f"-A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
        f"-A {chain} -j {src_chain}",
        f"-A {chain} -j {dst_chain}",
    ]
    src_lines = [f"-A {src_chain} -s {ip}/32 -j RETURN" for pod in known for ip in pod.ips]
    src_lines.append(f"-A {src_chain} -j DROP")
    dst_lines = [f"-A {dst_chain} -d {ip}/32 -j RETURN" for pod in known for ip in pod.ips]
    dst_lines.append(f"-A {dst_chain} -j DROP")

    egress_jumps: list[str] = []
    ingress_jumps: list[str] = []
    pod_lines: list[str] = []
    for direction, jumps in (("Egress", egress_jumps), ("Ingress", ingress_jumps)):
        for pod in known:
            selecting = [
                p
                for p in ordered_policies
                if ((p.get("metadata") or {}).get("namespace") or "default") == pod.namespace
                and direction in policy_types(p)
                and selector_matches((p.get("spec") or {}).get("podSelector"), pod.labels)
            ]
            if not selecting:
                continue
            name = pod_chain(chain, direction[0], pod.uid)
            declared.append(name)
            addr_flag = "-s" if direction == "Egress" else "-d"
            jumps.extend(f"-A {chain} {addr_flag} {ip}/32 -j {name}" for ip in pod.ips)
            body: list[str] = []
            for policy in selecting:
                spec = policy.get("spec") or {}
                for rule in spec.get("egress" if direction == "Egress" else "ingress") or []:
                    if direction == "Egress":
                        body.extend(_egress_rule(rule, policy, known, ns_labels))
                    else:
                        body.extend(_ingress_rule(rule, policy, pod, known, ns_labels))
            pod_lines.extend(f"-A {name} {m}-j RETURN" for m in dict.fromkeys(body))
            pod_lines.append(f"-A {name} -j DROP")

    return (
        [f":{name} - [0:0]" for name in declared]
        + entry
        + egress_jumps
        + ingress_jumps
        + src_lines
        + dst_lines
        + pod_lines
    )


def _egress_rule(rule, policy, known, ns_labels) -> list[str]:
    """Matches (each ending in a space) for one egress rule of a policy selecting the source."""
    peers = _peers(rule.get("to"), policy, known, ns_labels)
    ports = rule.get("ports") or []
    out: list[str] = []
    if peers is None:
        # Numeric ports need no destination; a named port means something only per destination.
        numeric = [p for p in ports if not _is_named(p)]
        named = [p for p in ports if _is_named(p)]
        if not ports:
            out.append("")
        out.extend(m for m in (_port_match(p, None) for p in numeric) if m is not None)
        for dst in known:
            out.extend(f"-d {ip}/32 {m}" for p in named for m in _named_matches(p, dst) for ip in dst.ips)
        return out
    for dst in peers:
        for m in _port_matches(ports, dst):
            out.extend(f"-d {ip}/32 {m}" for ip in dst.ips)
    return out


def _ingress_rule(rule, policy, dst, known, ns_labels) -> list[str]:
    """Matches for one ingress rule of a policy selecting the destination ``dst``."""
    peers = _peers(rule.get("from"), policy, known, ns_labels)
    matches = _port_matches(rule.get("ports") or [], dst)
    if peers is None:
        return matches
    return [f"-s {ip}/32 {m}" for src in peers for ip in src.ips for m in matches]


def _peers(peers, policy, known, ns_labels) -> list[KnownPod] | None:
    """The known pods a rule's ``from``/``to`` names; None when it names every source/destination."""
    if not peers:
        return None
    policy_ns = (policy.get("metadata") or {}).get("namespace") or "default"
    chosen: dict[str, KnownPod] = {}
    for peer in peers:
        for pod in known:
            if _peer_matches(peer, pod, policy_ns, ns_labels):
                chosen.setdefault(pod.uid, pod)
    return [pod for pod in known if pod.uid in chosen]


def _peer_matches(peer: Mapping, pod: KnownPod, policy_ns: str, ns_labels) -> bool:
    block = peer.get("ipBlock")
    if block is not None:
        try:
            cidr = ipaddress.ip_network(block.get("cidr"), strict=False)
            excepts = [ipaddress.ip_network(e, strict=False) for e in block.get("except") or []]
        except (TypeError, ValueError):
            return False
        return any(_in_block(ip, cidr, excepts) for ip in pod.ips)
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    if pod_sel is None and ns_sel is None:
        return False
    if ns_sel is None:
        in_namespace = pod.namespace == policy_ns
    else:
        in_namespace = selector_matches(ns_sel, ns_labels.get(pod.namespace, {}))
    return in_namespace and (pod_sel is None or selector_matches(pod_sel, pod.labels))


def _in_block(ip: str, cidr, excepts) -> bool:
    address = ipaddress.ip_address(ip)
    if address.version != cidr.version or address not in cidr:
        return False
    return not any(address.version == e.version and address in e for e in excepts)


def _is_named(port_entry: Mapping) -> bool:
    return isinstance(port_entry.get("port"), str) and not port_entry["port"].isdigit()


def _port_matches(ports: Sequence[Mapping], dst: KnownPod) -> list[str]:
    """Matches for a rule's ``ports`` towards ``dst``: [""] (anything) when there are none."""
    if not ports:
        return [""]
    out: list[str] = []
    for entry in ports:
        if _is_named(entry):
            out.extend(_named_matches(entry, dst))
        else:
            match = _port_match(entry, None)
            if match is not None:
                out.append(match)
    return out


def _port_match(entry: Mapping, number: int | None) -> str | None:
    """``-p tcp -m tcp --dport N[:M] `` for a numeric entry (or a resolved ``number``)."""
    proto = PROTOCOLS.get(entry.get("protocol") or "TCP")
    if proto is None:
        return None
    if number is None:
        port = entry.get("port")
        if port is None:
            return f"-p {proto} "
        try:
            number = int(port)
        except (TypeError, ValueError):
            return None
        end = entry.get("endPort")
        if end is not None:
            end = int(end)
            if not 1 <= number <= end <= 65535:
                return None
            if end != number:
                return f"-p {proto} -m {proto} --dport {number}:{end} "
    if not 1 <= number <= 65535:
        return None
    return f"-p {proto} -m {proto} --dport {number} "


def _named_matches(entry: Mapping, dst: KnownPod) -> list[str]:
    protocol = entry.get("protocol") or "TCP"
    numbers = sorted({n for name, proto, n in dst.container_ports if name == entry["port"] and proto == protocol})
    return [m for m in (_port_match(entry, n) for n in numbers) if m is not None]


def _is_ipv4(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 4
    except ValueError:
        return False


# --- applying: iptables-restore --noflush, one transaction -------------------------------------


class ApplyError(RuntimeError):
    """iptables refused the rules; the chains keep what they had before (restore is atomic)."""


def _argv(command: str | Sequence[str]) -> list[str]:
    return [command] if isinstance(command, str) else list(command)


def _run(argv: list[str], text: str | None, timeout: float) -> str:
    try:
        done = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ApplyError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        raise ApplyError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def existing_chains(*, chain: str = ENTRY_CHAIN, iptables_save: str | Sequence[str] = "iptables-save",
                    timeout: float = 30) -> list[str]:
    """Our chains that exist now in the filter table."""
    out = _run(_argv(iptables_save) + ["-t", "filter"], None, timeout)
    names = [line[1:].split()[0] for line in out.splitlines() if line.startswith(":")]
    return [name for name in names if is_our_chain(name, chain)]


def restore_input(lines: Sequence[str], stale: Sequence[str], chain: str) -> str:
    """The text for ``iptables-restore --noflush``: declaring a chain flushes it, so the new rules
    replace the old ones in one transaction; stale chains are flushed, then deleted after the entry
    chain (refilled above them) no longer jumps to them."""
    for line in lines:
        name = line[1:].split()[0] if line.startswith(":") else line.split()[1] if line.startswith("-A ") else None
        if name is None or not is_our_chain(name, chain):
            raise ValueError(f"refusing a rule line that is not for our chains: {line!r}")
    declarations = [line for line in lines if line.startswith(":")]
    rules = [line for line in lines if not line.startswith(":")]
    return "\n".join(
        ["*filter", *declarations, *(f":{name} - [0:0]" for name in stale), *rules,
         *(f"-X {name}" for name in stale), "COMMIT", ""]
    )


def apply(
    lines: Sequence[str],
    *,
    chain: str = ENTRY_CHAIN,
    iptables: str | Sequence[str] = "iptables-restore",
    iptables_save: str | Sequence[str] = "iptables-save",
    timeout: float = 30,
) -> None:
    """Replace our chains with ``lines`` atomically and delete our chains they no longer declare."""
    check_chain_name(chain)
    declared = {line[1:].split()[0] for line in lines if line.startswith(":")}
    if chain not in declared:
        raise ValueError(f"the rules must declare the entry chain {chain}")
    stale = sorted(set(existing_chains(chain=chain, iptables_save=iptables_save, timeout=timeout)) - declared)
    _run(_argv(iptables) + ["-w", "5", "--noflush"], restore_input(lines, stale, chain), timeout)


def ensure_entry_chain(
    *,
    chain: str = ENTRY_CHAIN,
    iptables: str | Sequence[str] = "iptables-restore",
    iptables_save: str | Sequence[str] = "iptables-save",
    timeout: float = 30,
) -> bool:
    """Create the entry chain, dropping everything until the first sync, if it does not exist yet.

    Lets the caller hook its jump before the enforcer has listed anything, without opening the pod
    network meanwhile. Returns whether it created the chain (an existing one is left untouched).
    """
    check_chain_name(chain)
    if chain in existing_chains(chain=chain, iptables_save=iptables_save, timeout=timeout):
        return False
    _run(_argv(iptables) + ["-w", "5", "--noflush"], f"*filter\n:{chain} - [0:0]\n-A {chain} -j DROP\nCOMMIT\n", timeout)
    return True


def remove(
    *,
    chain: str = ENTRY_CHAIN,
    iptables: str | Sequence[str] = "iptables-restore",
    iptables_save: str | Sequence[str] = "iptables-save",
    timeout: float = 30,
) -> None:
    """Delete all our chains (the caller unhooks its jump first, or iptables refuses)."""
    check_chain_name(chain)
    ours = existing_chains(chain=chain, iptables_save=iptables_save, timeout=timeout)
    if not ours:
        return
    text = "\n".join(["*filter", *(f":{n} - [0:0]" for n in ours), *(f"-X {n}" for n in ours), "COMMIT", ""])
    _run(_argv(iptables) + ["-w", "5", "--noflush"], text, timeout)


# --- the runner: list, compute, apply on change; watches to react fast -------------------------

REQUEST_TIMEOUT = (5, 30)  # connect, read (seconds) for every list
WATCH_SECONDS = 240  # the server ends a watch after this; the read timeout is a bit longer
MIN_WATCH_SECONDS = 5
DEBOUNCE_SECONDS = 0.3
MAX_BACKOFF_SECONDS = 30


@dataclass(frozen=True)
class Snapshot:
    pods: list
    namespaces: list
    policies: list


class Enforcer:
    """Keeps the chains equal to what the API objects ask for.

    ``list_objects`` returns a :class:`Snapshot` or raises; ``apply_rules`` writes lines or raises.
    A failed list or apply keeps the last rules in place (fail closed for new pods) and is retried
    with backoff by :meth:`run`.
    """

    def __init__(self, list_objects: Callable[[], Snapshot], apply_rules: Callable[[list[str]], None],
                 *, chain: str = ENTRY_CHAIN):
        self.list_objects = list_objects
        self.apply_rules = apply_rules
        self.chain = chain
        self.applied: list[str] | None = None
        self.changed = threading.Event()
        self.stopping = threading.Event()

    def sync(self) -> bool:
        """List, compute, and apply if the rules differ from the last applied. Returns whether it applied."""
        snap = self.list_objects()
        lines = compute_rules(snap.pods, snap.namespaces, snap.policies, chain=self.chain)
        if lines == self.applied:
            return False
        self.apply_rules(lines)
        self.applied = lines
        isolated_in = sum(1 for line in lines if line.startswith(f":{self.chain}-I-"))
        isolated_out = sum(1 for line in lines if line.startswith(f":{self.chain}-E-"))
        log.info(
            "applied %d iptables lines: %d pods known, %d policies, %d pods isolated for ingress, %d for egress",
            len(lines), len(known_pods(snap.pods)), len(snap.policies), isolated_in, isolated_out,
        )
        return True

    def run(self, resync: float, sleep: Callable[[float], bool] | None = None) -> None:
        """Sync on every change (debounced) and at least every ``resync`` seconds until stopped."""
        wait = sleep or self.stopping.wait
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                self.sync()
                backoff = 1.0
            except Exception as exc:  # noqa: BLE001 - the enforcer outlives API and iptables failures
                log.warning("sync failed, keeping the last rules, retrying in %.0fs: %s", backoff, exc)
                if wait(backoff):
                    return
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            self.changed.wait(timeout=resync)
            if self.changed.is_set():
                # Let a burst of events (a Deployment's pods starting) settle into one apply.
                if wait(DEBOUNCE_SECONDS):
                    return
                self.changed.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.changed.set()


def kubernetes_lister(api_client) -> Callable[[], Snapshot]:
    """Lists the three kinds as plain API JSON (camelCase), each call with a timeout."""
    from kubernetes import client

    core, net = client.CoreV1Api(api_client), client.NetworkingV1Api(api_client)

    def items(call) -> list:
        response = call(_preload_content=False, _request_timeout=REQUEST_TIMEOUT)
        return json.loads(response.data)["items"]

    def list_objects() -> Snapshot:
        return Snapshot(
            pods=items(core.list_pod_for_all_namespaces),
            namespaces=items(core.list_namespace),
            policies=items(net.list_network_policy_for_all_namespaces),
        )

    return list_objects


def start_watches(api_client, enforcer: Enforcer) -> list[threading.Thread]:
    """One daemon thread per kind that sets ``enforcer.changed`` on every event.

    A watch that fails (API server restarting, 410 Gone) starts again after a backoff; the events
    only say "look again", the state always comes from a full list.
    """
    from kubernetes import client, watch

    core, net = client.CoreV1Api(api_client), client.NetworkingV1Api(api_client)
    calls = {
        "pods": core.list_pod_for_all_namespaces,
        "namespaces": core.list_namespace,
        "networkpolicies": net.list_network_policy_for_all_namespaces,
    }

    def loop(kind: str, call) -> None:
        backoff = 1.0
        while not enforcer.stopping.is_set():
            started = time.monotonic()
            try:
                for _event in watch.Watch().stream(
                    call, deserialize=False, timeout_seconds=WATCH_SECONDS, _request_timeout=(5, WATCH_SECONDS + 30)
                ):
                    enforcer.changed.set()
                    if enforcer.stopping.is_set():
                        return
            except Exception as exc:  # noqa: BLE001 - reconnect whatever went wrong
                log.debug("watch of %s ended: %s", kind, exc)
            # A watch that ends at once (a server on its way down, an error) is retried with backoff
            # rather than in a tight loop; one that ran its course is restarted right away.
            if time.monotonic() - started > MIN_WATCH_SECONDS:
                backoff = 1.0
                continue
            if enforcer.stopping.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    threads = [threading.Thread(target=loop, args=item, name=f"watch-{item[0]}", daemon=True) for item in calls.items()]
    for thread in threads:
        thread.start()
    return threads


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.network_policy", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--once", action="store_true", help="sync once and exit (status 1 if it failed)")
    parser.add_argument("--resync", type=float, default=30.0, help="full resync period in seconds")
    parser.add_argument("--chain", default=ENTRY_CHAIN, help="entry chain name (tests use their own)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # A restarting API server would fill the log with urllib3's retries; the sync says it once.
    logging.getLogger("urllib3").setLevel(logging.ERROR)

    from kubernetes import config

    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    enforcer = Enforcer(kubernetes_lister(api_client), lambda lines: apply(lines, chain=args.chain), chain=args.chain)
    if args.once:
        try:
            enforcer.sync()
        except Exception as exc:  # noqa: BLE001 - reported as the exit status
            log.error("sync failed: %s", exc)
            return 1
        return 0

    if ensure_entry_chain(chain=args.chain):
        log.info("created %s dropping all pod traffic until the first sync", args.chain)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: enforcer.stop())
    start_watches(api_client, enforcer)
    enforcer.run(args.resync)
    # The rules stay in place on exit: pods keep their policies until a new enforcer takes over.
    return 0


if __name__ == "__main__":
    sys.exit(main())
