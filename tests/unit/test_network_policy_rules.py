"""The NetworkPolicy enforcer's rules, read back by a small iptables interpreter.

``verdict`` runs the lines ``compute_rules`` wrote the way the filter table would for one NEW packet,
understanding only the matches the enforcer emits (anything else fails the test). The property test
compares it with ``oracle_allows``, written again from the NetworkPolicy API reference without the
module's helpers, over random pods, namespaces, labels and policies.
"""

from __future__ import annotations

import ipaddress
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client import ApiClient, Configuration

from cluster.network_policy import (
    ENTRY_CHAIN,
    Enforcer,
    Snapshot,
    compute_rules,
    kubernetes_lister,
    pod_chain,
    restore_input,
    start_watches,
)

# --- an interpreter of the emitted rules ----------------------------------------------------------


def parse_rules(lines: list[str]) -> dict[str, list[dict]]:
    chains: dict[str, list[dict]] = {}
    for line in lines:
        if line.startswith(":"):
            name, policy, counters = line[1:].split()
            assert (policy, counters) == ("-", "[0:0]")
            assert len(name) <= 28, name
            assert name not in chains, f"{name} declared twice"
            chains[name] = []
            continue
        tokens = line.split()
        assert tokens[0] == "-A" and tokens[1] in chains, line
        rule: dict = {}
        rest = tokens[2:]
        while rest:
            flag, value, rest = rest[0], rest[1], rest[2:]
            if flag in ("-s", "-d"):
                assert value.endswith("/32"), line
                rule[flag] = value[:-3]
            elif flag == "-p":
                rule["proto"] = value
            elif flag == "-m" and value == "conntrack":
                assert rest[:2] == ["--ctstate", "ESTABLISHED,RELATED"], line
                rule["ctstate"] = {"ESTABLISHED", "RELATED"}
                rest = rest[2:]
            elif flag == "-m":
                assert value == rule.get("proto") and rest[0] == "--dport", line
                low, _, high = rest[1].partition(":")
                rule["dport"] = (int(low), int(high or low))
                rest = rest[2:]
            elif flag == "-j":
                rule["target"] = value
            else:
                raise AssertionError(f"unexpected match {flag} in {line!r}")
        assert "target" in rule and (rule["target"] in ("RETURN", "DROP") or rule["target"] in chains), line
        chains[tokens[1]].append(rule)
    return chains


def verdict(lines, src, dst, proto, port, *, chain=ENTRY_CHAIN, state="NEW") -> str:
    """"RETURN" (the caller accepts) or "DROP" for one packet entering ``chain``."""
    chains = lines if isinstance(lines, dict) else parse_rules(lines)

    def matches(rule) -> bool:
        if "ctstate" in rule and state not in rule["ctstate"]:
            return False
        if "-s" in rule and rule["-s"] != src or "-d" in rule and rule["-d"] != dst:
            return False
        if "proto" in rule and rule["proto"] != proto:
            return False
        if "dport" in rule:
            low, high = rule["dport"]
            return port is not None and low <= port <= high
        return True

    def run(name, depth=0) -> str:
        assert depth < 5, "jump loop"
        for rule in chains[name]:
            if not matches(rule):
                continue
            if rule["target"] in ("RETURN", "DROP"):
                return rule["target"]
            if run(rule["target"], depth + 1) == "DROP":
                return "DROP"
        return "RETURN"

    return run(chain)


def allowed(lines, src, dst, proto="tcp", port=80, **kw) -> bool:
    return verdict(lines, src["status"]["podIP"], dst["status"]["podIP"], proto, port, **kw) == "RETURN"


# --- objects ------------------------------------------------------------------------------------


def ns(name, **labels):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def pod(name, namespace, ip, labels=None, *, phase="Running", ports=(), host_network=False):
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}", "labels": labels or {}},
        "spec": {
            "hostNetwork": host_network,
            "containers": [
                {"name": "main", "ports": [{"name": n, "protocol": p, "containerPort": c} for n, p, c in ports]}
            ],
        },
        "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}] if ip else []},
    }


def policy(name, namespace, pod_selector=None, *, types=None, ingress=None, egress=None):
    spec = {"podSelector": pod_selector or {}}
    if types is not None:
        spec["policyTypes"] = types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


NAMESPACES = [ns("shop", team="blue"), ns("guest", team="red")]
WEB = pod("web", "shop", "10.244.0.10", {"app": "web"}, ports=[("http", "TCP", 8080), ("dns", "UDP", 53)])
CLIENT = pod("client", "shop", "10.244.0.11", {"app": "client"})
GUEST = pod("guest", "guest", "10.244.0.12", {"app": "client"})
PODS = [WEB, CLIENT, GUEST]


def rules(*policies, pods=PODS, namespaces=NAMESPACES):
    return compute_rules(pods, namespaces, list(policies))


# --- examples -----------------------------------------------------------------------------------


def test_without_policies_every_known_pod_reaches_every_other():
    lines = rules()
    for src in PODS:
        for dst in PODS:
            assert allowed(lines, src, dst, "tcp", 80)
            assert allowed(lines, src, dst, "udp", 53)
            assert allowed(lines, src, dst, "icmp", None)


def test_entry_chain_lets_established_traffic_through_first():
    lines = rules(policy("deny", "shop", types=["Ingress", "Egress"]))
    assert [line for line in lines if line.startswith(f"-A {ENTRY_CHAIN} ")][0] == (
        f"-A {ENTRY_CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN"
    )
    assert verdict(lines, "10.244.0.11", "10.244.0.10", "tcp", 80, state="ESTABLISHED") == "RETURN"
    assert verdict(lines, "10.244.0.11", "10.244.0.10", "tcp", 80) == "DROP"


def test_an_ip_the_enforcer_does_not_know_is_dropped_both_ways():
    finished = pod("done", "shop", "10.244.0.20", phase="Succeeded")
    on_host = pod("agent", "shop", "10.244.0.21", host_network=True)
    pending = pod("starting", "shop", "10.244.0.22", phase="Pending")
    lines = rules(pods=[*PODS, finished, on_host, pending])
    for stranger in ("10.244.0.99", "10.244.0.20", "10.244.0.21"):
        assert verdict(lines, stranger, "10.244.0.10", "tcp", 80) == "DROP"
        assert verdict(lines, "10.244.0.10", stranger, "tcp", 80) == "DROP"
    assert allowed(lines, pending, WEB) and allowed(lines, WEB, pending)


def test_a_deny_all_ingress_policy_isolates_its_namespace_for_ingress_only():
    lines = rules(policy("deny", "shop", types=["Ingress"]))
    assert not allowed(lines, GUEST, WEB)
    assert not allowed(lines, CLIENT, WEB)
    assert allowed(lines, WEB, GUEST)  # egress is not isolated, the guest namespace has no policy


def test_a_pod_selector_peer_means_pods_of_the_policys_namespace():
    lines = rules(policy("web", "shop", {"matchLabels": {"app": "web"}},
                         ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]))
    assert allowed(lines, CLIENT, WEB)
    assert not allowed(lines, GUEST, WEB)  # same labels, other namespace
    assert allowed(lines, WEB, CLIENT)  # the client is not selected by any policy


def test_namespace_and_pod_selectors_in_one_peer_must_both_match():
    other = pod("other", "guest", "10.244.0.13", {"app": "other"})
    peer = {"namespaceSelector": {"matchLabels": {"team": "red"}}, "podSelector": {"matchLabels": {"app": "client"}}}
    lines = rules(policy("web", "shop", {"matchLabels": {"app": "web"}}, ingress=[{"from": [peer]}]),
                  pods=[*PODS, other])
    assert allowed(lines, GUEST, WEB)
    assert not allowed(lines, other, WEB)
    assert not allowed(lines, CLIENT, WEB)


def test_a_namespace_selector_alone_admits_every_pod_of_the_namespaces():
    lines = rules(policy("web", "shop", {"matchLabels": {"app": "web"}},
                         ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "red"}}}]}]))
    assert allowed(lines, GUEST, WEB)
    assert not allowed(lines, CLIENT, WEB)


@pytest.mark.parametrize(
    ("expression", "admits_client", "admits_guest"),
    [
        ({"key": "app", "operator": "In", "values": ["client"]}, True, True),
        ({"key": "app", "operator": "NotIn", "values": ["client"]}, False, False),
        ({"key": "app", "operator": "Exists"}, True, True),
        ({"key": "app", "operator": "DoesNotExist"}, False, False),
        ({"key": "app", "operator": "Sometimes"}, False, False),
    ],
)
def test_match_expressions(expression, admits_client, admits_guest):
    peer = {"namespaceSelector": {}, "podSelector": {"matchExpressions": [expression]}}
    lines = rules(policy("web", "shop", {"matchLabels": {"app": "web"}}, ingress=[{"from": [peer]}]))
    assert allowed(lines, CLIENT, WEB) is admits_client
    assert allowed(lines, GUEST, WEB) is admits_guest


def test_a_policy_selects_pods_with_match_expressions_too():
    selector = {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}
    lines = rules(policy("not-web", "shop", selector, types=["Ingress"]))
    assert not allowed(lines, WEB, CLIENT)
    assert allowed(lines, CLIENT, WEB)


def test_an_ip_block_admits_its_cidr_minus_the_exceptions():
    block = {"ipBlock": {"cidr": "10.244.0.8/29", "except": ["10.244.0.12/32"]}}
    lines = rules(policy("web", "shop", {"matchLabels": {"app": "web"}}, ingress=[{"from": [block]}]))
    assert allowed(lines, CLIENT, WEB)
    assert not allowed(lines, GUEST, WEB)


def test_ports_protocols_and_ranges():
    ports = [{"port": 80}, {"protocol": "UDP", "port": 53}, {"protocol": "SCTP", "port": 9000, "endPort": 9010}]
    lines = rules(policy("web", "shop", {"matchLabels": {"app": "web"}}, ingress=[{"ports": ports}]))
    assert allowed(lines, CLIENT, WEB, "tcp", 80)
    assert not allowed(lines, CLIENT, WEB, "udp", 80)  # TCP is the default protocol
    assert allowed(lines, CLIENT, WEB, "udp", 53)
    assert allowed(lines, CLIENT, WEB, "sctp", 9005)
    assert not allowed(lines, CLIENT, WEB, "sctp", 9011)
    assert not allowed(lines, CLIENT, WEB, "icmp", None)
    assert "-p sctp -m sctp --dport 9000:9010" in "\n".join(lines)


def test_a_protocol_without_a_port_admits_every_port_of_it():
    lines = rules(policy("web", "shop", {"matchLabels": {"app": "web"}}, ingress=[{"ports": [{"protocol": "UDP"}]}]))
    assert allowed(lines, CLIENT, WEB, "udp", 12345)
    assert not allowed(lines, CLIENT, WEB, "tcp", 12345)


def test_a_named_port_resolves_against_the_destination_pod():
    ingress = [{"ports": [{"port": "http"}, {"protocol": "UDP", "port": "dns"}, {"port": "missing"}]}]
    lines = rules(policy("web", "shop", {"matchLabels": {"app": "web"}}, ingress=ingress))
    assert allowed(lines, CLIENT, WEB, "tcp", 8080)
    assert allowed(lines, CLIENT, WEB, "udp", 53)
    assert not allowed(lines, CLIENT, WEB, "tcp", 53)  # "dns" is a UDP port of the pod


def test_a_named_egress_port_resolves_per_destination():
    other_web = pod("web2", "guest", "10.244.0.14", {"app": "web"}, ports=[("http", "TCP", 9090)])
    lines = rules(policy("client", "shop", {"matchLabels": {"app": "client"}}, egress=[{"ports": [{"port": "http"}]}]),
                  pods=[*PODS, other_web])
    assert allowed(lines, CLIENT, WEB, "tcp", 8080)
    assert not allowed(lines, CLIENT, WEB, "tcp", 9090)
    assert allowed(lines, CLIENT, other_web, "tcp", 9090)
    assert not allowed(lines, CLIENT, GUEST, "tcp", 8080)  # the guest has no port named http


def test_a_named_port_that_resolves_nowhere_allows_nothing():
    lines = rules(policy("web", "shop", {"matchLabels": {"app": "web"}}, ingress=[{"ports": [{"port": "missing"}]}]))
    assert not any(allowed(lines, CLIENT, WEB, "tcp", port) for port in (53, 80, 8080))


def test_both_the_sources_egress_and_the_destinations_ingress_must_allow():
    open_ingress = policy("web", "shop", {"matchLabels": {"app": "web"}}, ingress=[{}])
    no_egress = policy("client", "shop", {"matchLabels": {"app": "client"}}, types=["Egress"])
    lines = rules(open_ingress, no_egress)
    assert not allowed(lines, CLIENT, WEB)
    assert allowed(lines, GUEST, WEB)


def test_policy_types_default_to_ingress_plus_egress_when_egress_rules_exist():
    to_web = [{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]
    lines = rules(policy("client", "shop", {"matchLabels": {"app": "client"}}, egress=to_web))
    assert allowed(lines, CLIENT, WEB)
    assert not allowed(lines, CLIENT, GUEST)  # egress isolated
    assert not allowed(lines, WEB, CLIENT)  # ingress isolated too (no ingress rules)
    lines = rules(policy("client", "shop", {"matchLabels": {"app": "client"}}, ingress=[{}]))
    assert allowed(lines, CLIENT, GUEST)  # no egress rules: not egress isolated


def test_rules_are_the_union_over_policies():
    from_client = policy("a", "shop", {"matchLabels": {"app": "web"}},
                         ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}])
    from_guest = policy("b", "shop", {"matchLabels": {"app": "web"}},
                        ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "red"}}}]}])
    lines = rules(from_client, from_guest)
    assert allowed(lines, CLIENT, WEB) and allowed(lines, GUEST, WEB)


def test_output_is_deterministic_and_chain_names_fit_iptables():
    policies = [
        policy("web", "shop", {"matchLabels": {"app": "web"}}, ingress=[{"ports": [{"port": "http"}]}]),
        policy("deny", "guest", types=["Ingress", "Egress"]),
    ]
    first = compute_rules(PODS, NAMESPACES, policies)
    shuffled = PODS[:]
    random.Random(1).shuffle(shuffled)
    assert compute_rules(shuffled, NAMESPACES[::-1], policies[::-1]) == first
    assert f":{pod_chain(ENTRY_CHAIN, 'I', 'uid-shop-web')} - [0:0]" in first
    assert all(len(line[1:].split()[0]) <= 28 for line in first if line.startswith(":"))
    parse_rules(first)


def test_the_chain_prefix_is_a_parameter():
    lines = compute_rules(PODS, NAMESPACES, [policy("deny", "shop")], chain="TNPTEST-1")
    assert all(line.split()[0 if line.startswith(":") else 1].lstrip(":").startswith("TNPTEST-1") for line in lines)
    assert verdict(lines, "10.244.0.11", "10.244.0.10", "tcp", 80, chain="TNPTEST-1") == "DROP"
    with pytest.raises(ValueError):
        compute_rules(PODS, NAMESPACES, [], chain="A-CHAIN-NAME-FAR-TOO-LONG")


def test_restore_input_replaces_our_chains_and_deletes_stale_ones_last():
    lines = rules()
    stale = pod_chain(ENTRY_CHAIN, "I", "gone")
    text = restore_input(lines, [stale], ENTRY_CHAIN).splitlines()
    assert text[0] == "*filter" and text[-1] == "COMMIT"
    assert text.index(f":{stale} - [0:0]") < text.index(f"-A {ENTRY_CHAIN} -j {ENTRY_CHAIN}-SRC")
    assert text[-2] == f"-X {stale}"
    with pytest.raises(ValueError):
        restore_input([*lines, "-A FORWARD -j ACCEPT"], [], ENTRY_CHAIN)


class FakeCluster:
    def __init__(self):
        self.snapshot = Snapshot(pods=PODS, namespaces=NAMESPACES, policies=[])
        self.down = False
        self.applied: list[list[str]] = []

    def list_objects(self):
        if self.down:
            raise ConnectionError("API server restarting")
        return self.snapshot

    def apply(self, lines):
        self.applied.append(lines)


def test_the_enforcer_applies_only_when_the_rules_change_and_keeps_them_while_the_api_is_down():
    cluster = FakeCluster()
    enforcer = Enforcer(cluster.list_objects, cluster.apply)
    assert enforcer.sync() is True
    assert enforcer.sync() is False
    cluster.down = True
    with pytest.raises(ConnectionError):
        enforcer.sync()
    assert len(cluster.applied) == 1 and enforcer.applied == cluster.applied[0]
    cluster.down = False
    cluster.snapshot = Snapshot(pods=PODS, namespaces=NAMESPACES, policies=[policy("deny", "shop")])
    assert enforcer.sync() is True
    assert not allowed(cluster.applied[-1], CLIENT, WEB)


def test_the_enforcer_loop_retries_with_backoff_after_a_failure():
    cluster = FakeCluster()
    cluster.down = True
    enforcer = Enforcer(cluster.list_objects, cluster.apply)
    waits: list[float] = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 3:
            cluster.down = False
            enforcer.stop()  # the loop syncs no more once stopped
        return False

    enforcer.run(resync=30, sleep=sleep)
    assert waits == [1.0, 2.0, 4.0]


# --- the property: the rules agree with the specification ---------------------------------------

NS_NAMES = ["a", "b"]
# Few keys and values, so that selectors often match something and often miss it.
label_maps = st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["x", "y"]), max_size=2)


def selectors(keys):
    expressions = st.builds(
        lambda key, op, values: {"key": key, "operator": op, **({"values": values} if op in ("In", "NotIn") else {})},
        st.sampled_from(keys),
        st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]),
        st.lists(st.sampled_from(["x", "y"]), min_size=1, max_size=2, unique=True),
    )
    return st.builds(
        lambda labels, exprs: {**({"matchLabels": labels} if labels else {}),
                               **({"matchExpressions": exprs} if exprs else {})},
        st.dictionaries(st.sampled_from(keys), st.sampled_from(["x", "y"]), max_size=1),
        st.lists(expressions, max_size=1),
    )


pod_selectors = selectors(["app", "tier"])
namespace_selectors = selectors(["team"])
ip_blocks = st.builds(
    lambda cidr, excepts: {"ipBlock": {"cidr": cidr, **({"except": excepts} if excepts else {})}},
    st.sampled_from(["10.244.0.0/24", "10.244.0.0/30", "10.244.0.4/31", "0.0.0.0/0", "fd00::/64"]),
    st.lists(st.sampled_from(["10.244.0.2/32", "10.244.0.3/32", "10.244.0.4/30"]), max_size=2, unique=True),
)
peers = st.one_of(
    st.builds(lambda s: {"podSelector": s}, pod_selectors),
    st.builds(lambda s: {"namespaceSelector": s}, namespace_selectors),
    st.builds(lambda n, p: {"namespaceSelector": n, "podSelector": p}, namespace_selectors, pod_selectors),
    ip_blocks,
)


@st.composite
def port_entries(draw):
    entry = {}
    protocol = draw(st.sampled_from([None, "TCP", "UDP", "SCTP"]))
    if protocol:
        entry["protocol"] = protocol
    port = draw(st.sampled_from([None, 53, 80, 8080, "http", "dns", "nope"]))
    if port is not None:
        entry["port"] = port
    if isinstance(port, int) and draw(st.booleans()):
        entry["endPort"] = port + draw(st.sampled_from([0, 1, 30, 8000]))
    return entry


rule_lists = st.one_of(
    st.none(),
    st.lists(
        st.fixed_dictionaries({}, optional={"peers": st.lists(peers, max_size=2), "ports": st.lists(port_entries(), max_size=2)}),
        max_size=2,
    ),
)


@st.composite
def worlds(draw):
    namespaces = [ns(name, team=draw(st.sampled_from(["x", "y"]))) for name in NS_NAMES]
    pods = []
    for i in range(draw(st.integers(2, 5))):
        ports = []
        http = draw(st.sampled_from([None, ("TCP", 80), ("TCP", 8080), ("UDP", 80)]))
        if http:
            ports.append(("http", *http))
        dns = draw(st.sampled_from([None, ("UDP", 53), ("TCP", 53)]))
        if dns:
            ports.append(("dns", *dns))
        pods.append(pod(
            f"p{i}", draw(st.sampled_from(NS_NAMES)), f"10.244.0.{i + 2}", draw(label_maps),
            phase=draw(st.sampled_from(["Running"] * 4 + ["Pending"] * 2 + ["Succeeded"])),
            host_network=draw(st.sampled_from([False] * 9 + [True])), ports=ports,
        ))
    policies = []
    for i in range(draw(st.integers(1, 4))):
        spec = {"podSelector": draw(pod_selectors)}
        types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
        if types:
            spec["policyTypes"] = types
        for key, peer_key in (("ingress", "from"), ("egress", "to")):
            drawn = draw(rule_lists)
            if drawn is not None:
                spec[key] = [
                    {**({peer_key: r["peers"]} if "peers" in r else {}), **({"ports": r["ports"]} if "ports" in r else {})}
                    for r in drawn
                ]
        policies.append({"metadata": {"name": f"np{i}", "namespace": draw(st.sampled_from(NS_NAMES))}, "spec": spec})
    return pods, namespaces, policies


# The oracle, from the API reference, sharing no code with the module.

def o_selects(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e["key"], e["operator"], e.get("values", [])
        if op == "In" and not (k in labels and labels[k] in vals):
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def o_types(p):
    spec = p["spec"]
    if spec.get("policyTypes"):
        return spec["policyTypes"]
    return ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def o_peer(peer, other, policy_ns, namespaces):
    if "ipBlock" in peer:
        ip = ipaddress.ip_address(other["status"]["podIP"])
        block = peer["ipBlock"]
        net = ipaddress.ip_network(block["cidr"])
        if net.version != 4 or ip not in net:
            return False
        return all(ip not in ipaddress.ip_network(e) for e in block.get("except", []))
    other_ns = other["metadata"]["namespace"]
    if "namespaceSelector" in peer:
        ns_ok = o_selects(peer["namespaceSelector"], namespaces[other_ns])
    else:
        ns_ok = other_ns == policy_ns
    return ns_ok and o_selects(peer.get("podSelector", {}), other["metadata"]["labels"])


def o_port(entry, dst, proto, port):
    protocol = entry.get("protocol", "TCP")
    if protocol.lower() != proto:
        return False
    wanted = entry.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str):
        ports = [p for c in dst["spec"]["containers"] for p in c.get("ports", [])]
        return any(p["name"] == wanted and p["protocol"] == protocol and p["containerPort"] == port for p in ports)
    return port is not None and wanted <= port <= entry.get("endPort", wanted)


def o_direction_allows(direction, subject, other, dst, proto, port, policies, namespaces):
    subject_ns = subject["metadata"]["namespace"]
    selecting = [p for p in policies if p["metadata"]["namespace"] == subject_ns and direction in o_types(p)
                 and o_selects(p["spec"]["podSelector"], subject["metadata"]["labels"])]
    if not selecting:
        return True
    rules_key, peer_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for p in selecting:
        for rule in p["spec"].get(rules_key) or []:
            peer_ok = not rule.get(peer_key) or any(
                o_peer(peer, other, p["metadata"]["namespace"], namespaces) for peer in rule[peer_key])
            port_ok = not rule.get("ports") or any(o_port(e, dst, proto, port) for e in rule["ports"])
            if peer_ok and port_ok:
                return True
    return False


def oracle_allows(src, dst, proto, port, pods, namespaces, policies) -> bool:
    counted = {p["status"]["podIP"]: p for p in pods
               if p["status"]["phase"] in ("Pending", "Running") and not p["spec"]["hostNetwork"]}
    if src not in counted or dst not in counted:
        return False
    s, d = counted[src], counted[dst]
    ns_labels = {n["metadata"]["name"]: n["metadata"]["labels"] for n in namespaces}
    return (o_direction_allows("Egress", s, d, d, proto, port, policies, ns_labels)
            and o_direction_allows("Ingress", d, s, d, proto, port, policies, ns_labels))


PROBES = [("tcp", 53), ("tcp", 80), ("tcp", 81), ("tcp", 8080), ("tcp", 8081), ("udp", 53), ("udp", 80),
          ("sctp", 80), ("sctp", 8080), ("icmp", None)]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_the_rules_agree_with_the_specification(world):
    pods, namespaces, policies = world
    lines = parse_rules(compute_rules(pods, namespaces, policies))
    ips = [p["status"]["podIP"] for p in pods] + ["10.244.0.250"]
    for src in ips:
        for dst in ips:
            for proto, port in PROBES:
                expected = oracle_allows(src, dst, proto, port, pods, namespaces, policies)
                got = verdict(lines, src, dst, proto, port) == "RETURN"
                assert got == expected, (src, dst, proto, port)


# --- the runner against a fake API server on loopback -------------------------------------------

API_PATHS = {
    "/api/v1/pods": "pods",
    "/api/v1/namespaces": "namespaces",
    "/apis/networking.k8s.io/v1/networkpolicies": "networkpolicies",
}


class FakeApiServer:
    """Lists and watches of the three kinds; a watch sends ADDED for everything, then an event per change."""

    def __init__(self):
        self.state = {"pods": PODS, "namespaces": NAMESPACES, "networkpolicies": []}
        self.version = 1
        self.changed = threading.Condition()
        self.port = 0
        self.server = None

    def set(self, kind, items):
        with self.changed:
            self.state[kind] = items
            self.version += 1
            self.changed.notify_all()

    def start(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            # Chunked like the real API server: a client reads watch events as the chunks come.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send_chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def do_GET(self):
                url = urlsplit(self.path)
                kind = API_PATHS.get(url.path)
                if kind is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if parse_qs(url.query).get("watch", [""])[0].lower() != "true":
                    body = json.dumps({"metadata": {"resourceVersion": str(api.version)}, "items": api.state[kind]})
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body.encode())
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                seen = api.version
                for item in api.state[kind]:
                    self.send_chunk(json.dumps({"type": "ADDED", "object": item}).encode() + b"\n")
                while api.server is self.server:
                    with api.changed:
                        api.changed.wait(timeout=0.1)
                        if api.version == seen:
                            continue
                        seen = api.version
                    event = {"type": "MODIFIED", "object": {"metadata": {"resourceVersion": str(seen)}}}
                    self.send_chunk(json.dumps(event).encode() + b"\n")
                self.send_chunk(b"")
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        server, self.server = self.server, None
        server.shutdown()
        server.server_close()


def eventually(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_runner_follows_changes_and_survives_an_api_server_restart():
    api = FakeApiServer()
    api.start()
    api_client = ApiClient(Configuration(host=f"http://127.0.0.1:{api.port}"))
    applied: list[list[str]] = []
    enforcer = Enforcer(kubernetes_lister(api_client), applied.append)
    start_watches(api_client, enforcer)
    # The full resync is far away, so only the watches can bring the changes in time.
    runner = threading.Thread(target=enforcer.run, args=(600,), daemon=True)
    runner.start()
    try:
        assert eventually(lambda: applied and allowed(applied[-1], CLIENT, WEB))
        api.set("networkpolicies", [policy("deny", "shop", types=["Ingress"])])
        assert eventually(lambda: not allowed(applied[-1], CLIENT, WEB))
        count = len(applied)

        api.stop()
        api.set("networkpolicies", [])
        api.start()
        assert eventually(lambda: allowed(applied[-1], CLIENT, WEB)), "the change made while it was down"
        assert len(applied) == count + 1
        assert runner.is_alive()
    finally:
        enforcer.stop()
        if api.server:
            api.stop()
        runner.join(timeout=10)
