"""Two learners on the REAL local cluster (``TUTORIAL_TEST_KUBECONFIG``; under ``CI`` a missing
cluster fails): what one learner, acting as an attacker from their console or their pods, notices
when they try to reach the other learner, the node or anything else.

Every refusal is checked next to the same action succeeding where it is allowed (one's own
namespace, one's own pods, the host reaching the same port), so a broken network or a broken
kubeconfig cannot pass for a protection. A connection counts as made only when the TCP handshake
completed (busybox ``nc -e`` runs its program after connecting).

The node checks (firewall, gateway, kubelet) are about this machine's local cluster (cluster/):
they read its iptables chains and need root, as the cluster itself does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shlex
import socket
import subprocess
import types
import urllib.request
import uuid
from dataclasses import dataclass

import pytest
from django.test import override_settings
from kubernetes import client as k8s

from cluster.layout import CNI_BRIDGE, DNS_SERVICE_IP, KUBERNETES_SERVICE_IP, POD_CIDR, Layout
from cluster.node import PRE_CHAIN
from sandbox.backends import k8s_manifests as km
from sandbox.backends.base import Limits, SandboxSpec
from sandbox.backends.kubernetes import KubernetesBackend
from tests.kubernetes.real_cluster import build_toolbox_image, point_settings_at_cluster, toolbox_network

pytestmark = [
    pytest.mark.engine,
    pytest.mark.timeout(600),
]

NODE_IP = Layout.from_environment().node_ip
POD_GATEWAY = str(next(ipaddress.ip_network(POD_CIDR).hosts()))  # the CNI bridge's address
DNS_SERVICE = DNS_SERVICE_IP
QUOTA_PODS = 4  # server + client per learner, and room for the quota test to fill
LESSON_IMAGE = f"{os.environ.get('TUTORIAL_K8S_LESSON_REGISTRY', 'localhost:5000')}/tutorial/base:latest"
# TEST-NET-1: the stand-in for "anywhere outside this machine". Nothing is sent there unless the
# node's firewall is shown first to drop it before routing (see test_pods_cannot_reach_the_node...).
OUTSIDE = "192.0.2.1"

RESTRICTED_POD = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  securityContext: {{runAsNonRoot: true, runAsUser: 1000, seccompProfile: {{type: RuntimeDefault}}}}
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: {image}
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", {command}]
      securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}{extra}}}
{tail}"""


def pod_yaml(name: str, command: str = "sleep 3600", *, extra: str = "", tail: str = "") -> str:
    """A pod that passes Pod Security ``restricted``, unless ``extra`` (container securityContext)
    or ``tail`` (more lines of the container, or of the pod spec) add something that does not."""
    return RESTRICTED_POD.format(name=name, image=LESSON_IMAGE, command=f'"{command}"', extra=extra, tail=tail)


SERVER_READY = "      readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}\n"


def apply(manifest: str) -> str:
    return f"kubectl apply -f - <<'EOF'\n{manifest}\nEOF"


def spec_for(image: str, owner: str) -> SandboxSpec:
    return SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=1, owner_name=owner, lesson="pods",
                       workspace="kubernetes", image=image, limits=Limits())


async def sh(backend, ref, script, timeout=60):
    result = await backend.run(ref, script, timeout=timeout)
    return result.exit_code, result.output


@dataclass
class Learner:
    name: str
    spec: SandboxSpec
    ref: str
    namespace: str
    toolbox_ip: str = ""
    server_ip: str = ""
    service_ip: str = ""


@dataclass
class Classroom:
    backend: KubernetesBackend
    a: Learner
    b: Learner
    domain: str


# -- probes ---------------------------------------------------------------------------------------
def connect_script(targets) -> str:
    """Try every (host, port) at once; print ``open host:port`` for each handshake that completed."""
    tries = [f"(timeout 8 nc -w 5 {host} {port} -e sh -c 'echo open {host}:{port} >&2' </dev/null >/dev/null) &"
             for host, port in targets]
    return "\n".join([*tries, "wait", "echo probes-done"])


def fetch_script(urls) -> str:
    """Fetch every URL at once; print ``got URL BODY`` for each answer."""
    tries = [f"(body=$(timeout 6 wget -qO- {url} 2>/dev/null) && echo \"got {url} $body\") &" for url in urls]
    return "\n".join([*tries, "wait", "echo probes-done"])


def in_pod(pod: str, script: str) -> str:
    return f"kubectl exec {pod} -- sh -c {shlex.quote(script)}"


def opened(output: str) -> set[tuple[str, int]]:
    return {(host, int(port)) for host, port in re.findall(r"^open (\S+):(\d+)\s*$", output, re.M)}


def answers(output: str) -> dict[str, str]:
    return dict(re.findall(r"^got (\S+) (.*?)\s*$", output, re.M))


async def connections(backend, ref, targets, pod: str | None = None) -> tuple[set, str]:
    script = connect_script(targets)
    code, out = await sh(backend, ref, in_pod(pod, script) if pod else script, timeout=60)
    assert "probes-done" in out, out  # the probes ran (kubectl exec worked)
    return opened(out), out


async def fetches(backend, ref, urls, pod: str) -> tuple[dict, str]:
    code, out = await sh(backend, ref, in_pod(pod, fetch_script(urls)), timeout=60)
    assert "probes-done" in out, out
    return answers(out), out


async def eventually_fetch(backend, ref, urls, pod: str, expected: str, seconds: float = 40) -> None:
    """Allowed paths may need a moment (kube-proxy and the NetworkPolicy enforcer sync): retry."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        got, out = await fetches(backend, ref, urls, pod)
        if all(got.get(url) == expected for url in urls):
            return
        if loop.time() > deadline:
            raise AssertionError(f"{pod} could not fetch {urls} (expected {expected!r}): {out}")
        await asyncio.sleep(1)


def resolved_to(nslookup_output: str, address: str) -> bool:
    """Whether busybox nslookup answered with this address (not merely named the server's)."""
    return re.search(rf"^Address:\s+{re.escape(address)}\s*$", nslookup_output, re.M) is not None


def host_connects(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=3):
        return True
    return False


@contextlib.contextmanager
def host_listener(address: str):
    """A TCP port listening on one of the node's own addresses (the kernel completes handshakes
    without accept), so "cannot reach the node on any port" is tested on a port that is open."""
    with socket.socket() as listener:
        listener.bind((address, 0))
        listener.listen(16)
        yield listener.getsockname()[1]


# -- the classroom --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toolbox_image(docker_client) -> str:
    return build_toolbox_image(docker_client)


async def _furnish(backend: KubernetesBackend, learner: Learner) -> None:
    """Each learner runs a web server pod (its own page), a client pod and a Service, from their console."""
    page = f"hello-{learner.name}"
    server = pod_yaml("server", f"echo {page} > /tmp/index.html && exec httpd -f -p 8080 -h /tmp", tail=SERVER_READY)
    script = (f"{apply(server)}\n{apply(pod_yaml('client'))}\n"
              "kubectl expose pod server --name web --port 8080 --target-port 8080 >/dev/null && "
              "kubectl wait --for=condition=Ready pod/server pod/client --timeout=90s")
    code, out = await sh(backend, learner.ref, script, timeout=120)
    assert code == 0, out
    code, out = await sh(backend, learner.ref, "kubectl get pod server -o jsonpath='{.status.podIP}'; echo; "
                                                "kubectl get service web -o jsonpath='{.spec.clusterIP}'")
    assert code == 0, out
    learner.server_ip, learner.service_ip = out.split()
    container = await asyncio.to_thread(backend.toolbox.client.containers.get, learner.ref)
    learner.toolbox_ip = container.attrs["NetworkSettings"]["Networks"][toolbox_network()]["IPAddress"]
    # A web server in the console too, the target of "another learner's console".
    code, out = await sh(backend, learner.ref, f"mkdir -p $HOME/www && echo {page}-toolbox > $HOME/www/index.html && "
                                                "httpd -p 8080 -h $HOME/www")
    assert code == 0, out


@pytest.fixture(scope="module")
def classroom(docker_client, toolbox_image):
    cluster = types.SimpleNamespace()
    point_settings_at_cluster(cluster)
    overrides = {key: value for key, value in vars(cluster).items() if key.isupper()}
    overrides["KUBERNETES_QUOTA"] = dict(km.DEFAULT_QUOTA, pods=str(QUOTA_PODS))
    # An install of its own: other tests' reapers and reconciles (of the test install, with its
    # empty database) leave these two sandboxes alone, as one site leaves another's alone.
    overrides["INSTALL_ID"] = f"isolation-{uuid.uuid4().hex[:8]}"
    with override_settings(**overrides):
        backend = KubernetesBackend()
        specs = [spec_for(toolbox_image, "learner-a"), spec_for(toolbox_image, "learner-b")]

        async def build() -> Classroom:
            refs = await asyncio.gather(*(backend.create(spec) for spec in specs), return_exceptions=True)
            for ref in refs:
                if isinstance(ref, BaseException):
                    raise ref
            a, b = (Learner(name, spec, ref, km.namespace_name(spec.sandbox_id))
                    for name, spec, ref in zip("AB", specs, refs, strict=True))
            await asyncio.gather(_furnish(backend, a), _furnish(backend, b))
            code, out = await sh(backend, a.ref, in_pod("client", "cat /etc/resolv.conf"))
            domain = re.search(rf"^search {re.escape(a.namespace)}\.svc\.(\S+)", out, re.M)
            assert code == 0 and domain, out
            return Classroom(backend, a, b, domain.group(1))

        async def tear_down() -> None:
            await asyncio.gather(*(backend.destroy(spec.sandbox_id) for spec in specs))

        try:
            yield asyncio.run(build())
        finally:
            asyncio.run(tear_down())


# -- 1. the API ------------------------------------------------------------------------------------
async def test_a_learner_cannot_touch_another_learners_namespace_or_the_cluster(classroom):
    backend, a, b = classroom.backend, classroom.a, classroom.b
    # What is refused below works in A's own namespace: the kubeconfig and the verbs are fine.
    for script in ("kubectl get pods", "kubectl get pod server", "kubectl logs server", "kubectl exec server -- true", "kubectl get hpa"):
        code, out = await sh(backend, a.ref, script)
        assert code == 0, (script, out)

    other = f"-n {b.namespace}"
    policy = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open}\n"
              "spec: {podSelector: {}, ingress: [{}], egress: [{}]}")
    for script in (f"kubectl {other} get pods", f"kubectl {other} get pod server", f"kubectl {other} exec server -- true",
                   f"kubectl {other} logs server", f"kubectl {other} delete pod server --wait=false",
                   f"kubectl {other} get secrets", f"kubectl {other} get hpa", f"kubectl {other} run intruder --image={LESSON_IMAGE}",
                   "kubectl get namespaces", "kubectl get nodes", f"kubectl get namespace {b.namespace}",
                   "kubectl create role x --verb=get --resource=pods",
                   f"kubectl create rolebinding x --role={km.LEARNER_ROLE} --serviceaccount={a.namespace}:default",
                   "kubectl create clusterrolebinding x --clusterrole=cluster-admin --serviceaccount=" + a.namespace + ":learner",
                   apply(policy),
                   "kubectl get pods --as=system:admin",
                   f"kubectl get pods {other} --as=system:serviceaccount:{b.namespace}:{km.LEARNER_ACCOUNT}"):
        code, out = await sh(backend, a.ref, script)
        assert code != 0 and "forbidden" in out.lower(), (script, out)

    # B notices nothing: its server is still there and still serving.
    code, out = await sh(backend, b.ref, "kubectl get pod server -o jsonpath='{.status.phase}' && kubectl get pods -o name")
    assert code == 0 and out.startswith("Running") and "intruder" not in out, out


# -- 2. pod to pod ---------------------------------------------------------------------------------
async def test_pods_reach_their_own_namespace_but_not_another_learners(classroom):
    backend, a, b, domain = classroom.backend, classroom.a, classroom.b, classroom.domain

    def urls(learner: Learner) -> list[str]:
        return [f"http://{learner.server_ip}:8080/", f"http://{learner.service_ip}:8080/",
                f"http://web.{learner.namespace}.svc.{domain}:8080/"]

    # Within a namespace everything works: pod IP, Service IP and Service name.
    await eventually_fetch(backend, a.ref, urls(a), "client", "hello-A")
    await eventually_fetch(backend, b.ref, urls(b), "client", "hello-B")

    # Across namespaces none of it does, either way, though the name resolves.
    for attacker, victim in ((a, b), (b, a)):
        code, out = await sh(backend, attacker.ref, in_pod("client", f"nslookup web.{victim.namespace}.svc.{domain} {DNS_SERVICE}"))
        assert resolved_to(out, victim.service_ip), out
        got, out = await fetches(backend, attacker.ref, urls(victim), "client")
        assert got == {}, out
        assert f"hello-{victim.name}" not in out, out


def hand_made_service(name: str, ip: str, port: int) -> str:
    """A Service without a selector and Endpoints the learner writes: kube-proxy sends its address
    wherever the learner says (the Endpoints are mirrored into an EndpointSlice)."""
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{ports: [{{port: 80, targetPort: {port}}}]}}\n"
            f"---\napiVersion: v1\nkind: Endpoints\nmetadata: {{name: {name}}}\n"
            f"subsets: [{{addresses: [{{ip: \"{ip}\"}}], ports: [{{port: {port}}}]}}]")


async def test_a_hand_made_service_does_not_lead_past_the_walls(classroom):
    """Learners may write Endpoints: a Service of their own namespace pointed at another learner's
    pod, the kubelet or a console is translated by kube-proxy, and must still be refused."""
    backend, a, b = classroom.backend, classroom.a, classroom.b
    targets = {"to-self": (a.server_ip, 8080), "to-b": (b.server_ip, 8080), "to-kubelet": (NODE_IP, 10250),
               "to-console": (b.toolbox_ip, 8080)}
    script = "\n".join(apply(hand_made_service(name, ip, port)) for name, (ip, port) in targets.items())
    code, out = await sh(backend, a.ref, script)
    assert code == 0, out
    try:
        code, out = await sh(backend, a.ref, "kubectl get services -o jsonpath='{range .items[*]}{.metadata.name} {.spec.clusterIP}{\"\\n\"}{end}'")
        addresses = dict(line.split() for line in out.splitlines() if line.strip())
        assert code == 0 and set(targets) <= set(addresses), out
        # The way works: the Service pointed at A's own server answers (mirroring, kube-proxy).
        await eventually_fetch(backend, a.ref, [f"http://{addresses['to-self']}:80/"], "client", "hello-A")
        got, out = await connections(backend, a.ref, [(addresses[name], 80) for name in targets], pod="client")
        assert got == {(addresses["to-self"], 80)}, out
    finally:
        await sh(backend, a.ref, f"kubectl delete service,endpoints {' '.join(targets)} --ignore-not-found --wait=false")


def link_local(output: str) -> str:
    """The fe80:: address in ``ip -6 -o addr`` output, or "" when there is none (no IPv6)."""
    found = re.search(r"inet6 (fe80:[0-9a-f:]+)/64", output)
    return found.group(1) if found else ""


async def test_ipv6_link_local_addresses_lead_nowhere(classroom):
    """Pods have IPv6 link-local addresses on the shared bridge while the NetworkPolicy rules and
    the node's firewall are IPv4: another learner's pod, and the node, must not answer on them."""
    backend, a, b = classroom.backend, classroom.a, classroom.b
    code, out = await sh(backend, b.ref, in_pod("server", "ip -6 -o addr show dev eth0 scope link"))
    assert code == 0, out
    server = link_local(out)
    bridge = link_local(subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", CNI_BRIDGE, "scope", "link"],
                                       capture_output=True, text=True, timeout=20).stdout)
    if not server and not bridge:
        return  # no IPv6 on the pod network at all: nothing to reach

    with contextlib.ExitStack() as stack:
        targets = []
        if server:
            # It answers on that address (asked from inside its own pod), so a refusal is the network's.
            code, out = await sh(backend, b.ref, in_pod("server", fetch_script([f"http://[{server}%eth0]:8080/"])))
            assert "hello-B" in out, out
            targets.append(f"http://[{server}%eth0]:8080/")
        if bridge:
            listener = stack.enter_context(socket.socket(socket.AF_INET6))
            listener.bind((bridge, 0, 0, socket.if_nametoindex(CNI_BRIDGE)))
            listener.listen(16)
            port = listener.getsockname()[1]
            with socket.create_connection((f"{bridge}%{CNI_BRIDGE}", port), timeout=3):
                pass
        got, out = await fetches(backend, a.ref, targets, "client") if targets else ({}, "")
        assert got == {}, out
        if bridge:
            opened_here, out = await connections(backend, a.ref, [(f"{bridge}%eth0", port)], pod="client")
            assert opened_here == set(), out


# -- 3. pods to the node and beyond ----------------------------------------------------------------
def _first_rule_for_a_new_outside_packet() -> tuple[str, str]:
    """The first rule of the node's PREROUTING chain that could take a new TCP packet from a pod to
    ``OUTSIDE``, and that rule's text: reading the rules, not sending anything. Options this reader
    does not know count as "may match", so anything unexpected ends the search."""
    hook = subprocess.run(["iptables", "-t", "mangle", "-S", "PREROUTING"], capture_output=True, text=True, timeout=20)
    rules = subprocess.run(["iptables", "-t", "mangle", "-S", PRE_CHAIN], capture_output=True, text=True, timeout=20)
    assert hook.returncode == 0 and rules.returncode == 0, (hook.stderr, rules.stderr)
    first_hook = next((line for line in hook.stdout.splitlines() if line.startswith("-A ")), "")
    assert first_hook == f"-A PREROUTING -j {PRE_CHAIN}", hook.stdout
    for line in rules.stdout.splitlines():
        if not line.startswith(f"-A {PRE_CHAIN} "):
            continue
        words = line.split()[2:]
        options = dict(zip(words[::2], words[1::2], strict=False))
        if len(words) % 2 or set(options) - {"-i", "-s", "-d", "-p", "-m", "--dport", "--ctstate", "-j"}:
            return "?", line
        if options.get("-i") not in (None, CNI_BRIDGE) or options.get("-s") not in (None, POD_CIDR):
            continue
        if options.get("-d") not in (None, f"{OUTSIDE}/32", "0.0.0.0/0") or "--dport" in options:
            continue
        if "--ctstate" in options and "NEW" not in options["--ctstate"].split(","):
            continue
        return options["-j"], line
    return "none", ""


def _outside_drops() -> int:
    listing = subprocess.run(["iptables", "-t", "mangle", "-L", PRE_CHAIN, "-v", "-x", "-n"], capture_output=True, text=True, timeout=20)
    assert listing.returncode == 0, listing.stderr
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[2] == "DROP" and fields[-2:] == [POD_CIDR, "0.0.0.0/0"]:
            return int(fields[0])
    raise AssertionError(f"no DROP rule for pods in {PRE_CHAIN}:\n{listing.stdout}")


async def test_pods_cannot_reach_the_node_the_consoles_or_outside(classroom):
    backend, a, b, domain = classroom.backend, classroom.a, classroom.b, classroom.domain
    core = k8s.CoreV1Api(backend.api_client())
    dns_pods = (await asyncio.to_thread(core.list_namespaced_pod, "kube-system", label_selector="k8s-app=kube-dns")).items
    assert dns_pods and dns_pods[0].status.pod_ip, dns_pods
    dns_pod = dns_pods[0].status.pod_ip
    with host_listener(POD_GATEWAY) as gateway_port, host_listener(NODE_IP) as node_port:
        # These are open: the host itself reaches them.
        for host, port in ((NODE_IP, 10250), (POD_GATEWAY, gateway_port), (NODE_IP, node_port), (b.toolbox_ip, 8080),
                           (dns_pod, 8080), (dns_pod, 8181)):
            assert host_connects(host, port), f"the host cannot reach {host}:{port}; the test would prove nothing"
        with urllib.request.urlopen(f"http://{b.toolbox_ip}:8080/", timeout=5) as page:
            assert page.read().decode().strip() == "hello-B-toolbox"

        # The namespace's NetworkPolicy lets pods reach the DNS server on port 53 and nothing else of it.
        allowed = {(a.server_ip, 8080), (dns_pod, 53)}
        # etcd listens on 127.0.0.1 only; it is here so that a listener moved outwards is caught too.
        refused = {(NODE_IP, 10250), (NODE_IP, 2379), (POD_GATEWAY, 2379), (POD_GATEWAY, 10250),
                   (POD_GATEWAY, gateway_port), (NODE_IP, node_port), (b.toolbox_ip, 8080), (a.toolbox_ip, 8080),
                   (dns_pod, 8080), (dns_pod, 8181)}
        got, out = await connections(backend, a.ref, allowed | refused, pod="client")
        assert got == allowed, out

    # DNS answers names of the cluster, and refuses every other name at once (nothing to forward to).
    code, out = await sh(backend, a.ref, in_pod("client", f"timeout 10 nslookup kubernetes.default.svc.{domain} {DNS_SERVICE}"))
    assert code == 0 and resolved_to(out, KUBERNETES_SERVICE_IP), out
    code, out = await sh(backend, a.ref, in_pod("client", f"timeout 10 nslookup example.com {DNS_SERVICE}"))
    assert code != 0 and "NXDOMAIN" in out, out

    # Outside: only once the rules show a new packet from a pod to OUTSIDE is dropped before
    # routing (so nothing can leave this machine) is one tried, and the drop counted.
    target, rule = _first_rule_for_a_new_outside_packet()
    assert target == "DROP", f"a pod's packet to {OUTSIDE} would not be dropped first (rule: {rule or 'none'}); not sending it"
    before = _outside_drops()
    got, out = await connections(backend, a.ref, [(OUTSIDE, 80)], pod="client")
    assert got == set(), out
    assert _outside_drops() > before


# -- 4. the console's network -------------------------------------------------------------------------
async def test_a_console_reaches_only_the_api_server(classroom):
    backend, a, b = classroom.backend, classroom.a, classroom.b
    code, out = await sh(backend, a.ref, "kubectl get pods -o name")
    assert code == 0 and "pod/server" in out, out
    with host_listener(NODE_IP) as node_port, host_listener(POD_GATEWAY) as gateway_port:
        assert host_connects(NODE_IP, node_port) and host_connects(b.toolbox_ip, 8080)
        allowed = {(NODE_IP, 6443)}
        # 2379 and 10257/10259/10249/10256 and the registry listen on 127.0.0.1; the node's firewall
        # drops them anyway, as it drops the open node_port and gateway_port.
        refused = {(NODE_IP, port) for port in (2379, 10250, 10257, 10259, 10249, 10256, 5000, node_port)}
        refused |= {(POD_GATEWAY, gateway_port), (a.server_ip, 8080), (a.service_ip, 8080), (b.server_ip, 8080),
                    (b.service_ip, 8080), (b.toolbox_ip, 8080)}
        got, out = await connections(backend, a.ref, allowed | refused)
        assert got == allowed, out
    # The pods' servers are up (their own clients reach them), so the refusals above are the network's.
    await eventually_fetch(backend, a.ref, [f"http://{a.server_ip}:8080/", f"http://{a.service_ip}:8080/"], "client", "hello-A")


# -- 5-7. admission ---------------------------------------------------------------------------------
async def test_pod_security_refuses_root_and_host_access_naming_the_field(classroom):
    backend, a = classroom.backend, classroom.a
    cases = {
        "root": (pod_yaml("root", extra=", runAsUser: 0"), "runAsUser=0"),
        "hostpath": (pod_yaml("hostpath", tail="  volumes: [{name: host, hostPath: {path: /}}]\n"), "hostPath"),
        "hostnet": (pod_yaml("hostnet", tail="  hostNetwork: true\n"), "hostNetwork=true"),
    }
    for name, (manifest, field) in cases.items():
        code, out = await sh(backend, a.ref, apply(manifest))
        assert code != 0 and "violates PodSecurity" in out and field in out, (name, out)
        code, out = await sh(backend, a.ref, f"kubectl get pod {name}")
        assert code != 0 and "NotFound" in out, (name, out)


async def test_service_account_token_secrets_are_refused_with_the_policys_message(classroom):
    backend, a = classroom.backend, classroom.a
    # Secrets as such are allowed: the refusal below is the token guard, not RBAC.
    code, out = await sh(backend, a.ref, "kubectl create secret generic plain --from-literal=k=v && kubectl delete secret plain")
    assert code == 0, out
    token = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: forever\n  annotations:\n"
             f"    kubernetes.io/service-account.name: {km.LEARNER_ACCOUNT}\ntype: kubernetes.io/service-account-token")
    code, out = await sh(backend, a.ref, apply(token))
    assert code != 0 and "tutorial-no-token-secrets" in out and "service-account token Secrets are not allowed" in out, out
    code, out = await sh(backend, a.ref, "kubectl get secret forever")
    assert code != 0 and "NotFound" in out, out


async def test_an_exhausted_quota_names_the_limit_and_the_numbers(classroom):
    backend, a = classroom.backend, classroom.a
    fillers = [f"filler{number}" for number in range(QUOTA_PODS + 1)]
    try:
        refusal = ""
        for name in fillers:
            code, out = await sh(backend, a.ref, apply(pod_yaml(name)))
            if code != 0:
                refusal = out
                break
        assert "exceeded quota" in refusal, refusal
        assert f"used: pods={QUOTA_PODS}" in refusal and f"limited: pods={QUOTA_PODS}" in refusal, refusal
    finally:
        await sh(backend, a.ref, f"kubectl delete pods {' '.join(fillers)} --ignore-not-found --wait=false")
