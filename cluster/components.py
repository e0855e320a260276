"""What each process of the local cluster is: its command line and the config files it reads.

Pure functions of the layout; ``node.py`` runs them. A component's fingerprint (command and
config) tells ``up`` whether a running process is still the right one or must be restarted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .layout import (
    API_PORT,
    CLUSTER_NAME,
    CNI_BRIDGE,
    DNS_SERVICE_IP,
    NODE_NAME,
    POD_CIDR,
    REGISTRY,
    REGISTRY_NAMES,
    SERVICE_CIDR,
    Layout,
)

CNI_PLUGIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)  # path -> content, written before start
    env: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        payload = json.dumps({"argv": self.argv, "files": self.files, "env": self.env}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def etcd(layout: Layout) -> Component:
    pki = layout.pki
    return Component("etcd", (
        str(layout.program("etcd")), "--name", CLUSTER_NAME, "--data-dir", str(layout.etcd_data),
        "--listen-client-urls", "https://127.0.0.1:2379", "--advertise-client-urls", "https://127.0.0.1:2379",
        "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        "--initial-cluster", f"{CLUSTER_NAME}=http://127.0.0.1:2380", "--listen-metrics-urls", "http://127.0.0.1:2381",
        "--client-cert-auth", f"--trusted-ca-file={pki / 'etcd-ca.crt'}",
        f"--cert-file={pki / 'etcd-server.crt'}", f"--key-file={pki / 'etcd-server.key'}",
        "--log-level", "warn", "--snapshot-count", "10000",
    ))


def apiserver(layout: Layout) -> Component:
    pki = layout.pki
    return Component("kube-apiserver", (
        str(layout.program("kube-apiserver")),
        f"--advertise-address={layout.node_ip}", f"--bind-address={layout.node_ip}", f"--secure-port={API_PORT}",
        "--etcd-servers=https://127.0.0.1:2379", f"--etcd-cafile={pki / 'etcd-ca.crt'}",
        f"--etcd-certfile={pki / 'apiserver-etcd-client.crt'}", f"--etcd-keyfile={pki / 'apiserver-etcd-client.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}", "--kubelet-preferred-address-types=InternalIP",
        "--authorization-mode=Node,RBAC", "--anonymous-auth=false", "--allow-privileged=false", "--profiling=false",
        # NodeRestriction: the kubelet's credentials change only its own node and pods.
        # DenyServiceExternalIPs: a learner's Service cannot claim an outside address.
        "--enable-admission-plugins=NodeRestriction,DenyServiceExternalIPs",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer=https://kubernetes.default.svc.{layout.domain}",
        f"--service-account-key-file={pki / 'service-account.pub'}",
        f"--service-account-signing-key-file={pki / 'service-account.key'}",
        "--v=0",
    ))


def controller_manager(layout: Layout) -> Component:
    pki, kubeconfig = layout.pki, str(layout.kubeconfig("controller-manager"))
    return Component("kube-controller-manager", (
        str(layout.program("kube-controller-manager")),
        f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false", f"--cluster-name={CLUSTER_NAME}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--root-ca-file={pki / 'ca.crt'}", f"--service-account-private-key-file={pki / 'service-account.key'}",
        "--use-service-account-credentials=true", f"--service-cluster-ip-range={SERVICE_CIDR}",
        # Deleted pods and finished containers go quickly: one machine, many learners.
        "--terminated-pod-gc-threshold=200",
    ))


def scheduler(layout: Layout) -> Component:
    kubeconfig = str(layout.kubeconfig("scheduler"))
    return Component("kube-scheduler", (
        str(layout.program("kube-scheduler")),
        f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false",
    ))


def containerd_config(layout: Layout) -> str:
    d = layout.containerd_dir
    cni_bin = next((p for p in CNI_PLUGIN_DIRS if Path(p, "bridge").exists()), CNI_PLUGIN_DIRS[0])
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join([
        "version = 2",
        f'root = "{d / "root"}"',
        f'state = "{d / "state"}"',
        "oom_score = 0",
        "[grpc]",
        f'  address = "{layout.containerd_socket}"',
        "[ttrpc]",
        f'  address = "{d / "containerd.sock.ttrpc"}"',
        "[debug]",
        '  level = "warn"',
        "[metrics]",
        '  address = ""',
        f"[{cri}]",
        f'  sandbox_image = "localhost:5000/tutorial/pause:{layout.versions["PAUSE_VERSION"]}"',
        # Negative OOM scores need CAP_SYS_RESOURCE, which this machine's bounding set lacks.
        "  restrict_oom_score_adj = true",
        "  enable_unprivileged_ports = false",
        "  enable_unprivileged_icmp = false",
        f"[{cri}.containerd]",
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        f"[{cri}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        f"[{cri}.containerd.runtimes.runc.options]",
        "  SystemdCgroup = false",
        f"[{cri}.cni]",
        f'  bin_dir = "{cni_bin}"',
        f'  conf_dir = "{layout.cni_config_dir}"',
        f"[{cri}.registry]",
        f'  config_path = "{d / "certs.d"}"',
        "",
    ])


def registry_hosts(layout: Layout) -> dict[str, str]:
    """containerd's per-registry files: both names of the classroom registry are plain HTTP on loopback."""
    return {
        str(layout.containerd_dir / "certs.d" / name / "hosts.toml"):
            f'server = "http://{REGISTRY}"\n\n[host."http://{REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n'
        for name in REGISTRY_NAMES
    }


def cni_config(layout: Layout) -> str:
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "tutorial",
        "plugins": [
            {
                "type": "bridge", "bridge": CNI_BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]], "routes": [{"dst": "0.0.0.0/0"}],
                         "dataDir": str(layout.cni_ipam_dir)},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            # The cluster is IPv4 only, and so are its firewall and NetworkPolicy enforcer: a pod
            # gets no IPv6 address at all (not even link-local), so none can be used to go around them.
            {"type": "tuning", "sysctl": {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}},
        ],
    }, indent=2) + "\n"


def containerd(layout: Layout) -> Component:
    config = layout.config_dir / "containerd.toml"
    files = {str(config): containerd_config(layout), **registry_hosts(layout),
             str(layout.cni_config_dir / "10-tutorial.conflist"): cni_config(layout)}
    return Component("containerd", ("/usr/bin/containerd", "--config", str(config)), files=files)


def kubelet_config(layout: Layout) -> dict:
    pki = layout.pki
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This machine is cgroup v1; kubelet 1.35 refuses it unless told.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "address": layout.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-server.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-server.key"),
        "clusterDomain": layout.domain,
        "clusterDNS": [DNS_SERVICE_IP],
        # No upstream resolver: pods resolve cluster names only (the network rule).
        "resolvConf": str(layout.config_dir / "resolv.conf"),
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "failSwapOn": False,
        "serializeImagePulls": False,
        "registerNode": True,
        "podPidsLimit": 1024,
        "maxPods": 110,
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "2%", "imagefs.available": "2%"},
        "imageGCHighThresholdPercent": 95,
        "imageGCLowThresholdPercent": 90,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "shutdownGracePeriod": "0s",
    }


def kubelet(layout: Layout) -> Component:
    config = layout.config_dir / "kubelet.yaml"
    return Component("kubelet", (
        str(layout.program("kubelet")), f"--config={config}", f"--kubeconfig={layout.kubeconfig('kubelet')}",
        f"--hostname-override={NODE_NAME}", f"--node-ip={layout.node_ip}", f"--root-dir={layout.kubelet_dir}",
        # Keep a crashed container's last run, so `kubectl logs --previous` has something to show.
        "--maximum-dead-containers-per-container=2", "--v=0",
    ), files={str(config): _yaml(kubelet_config(layout)), str(layout.config_dir / "resolv.conf"): "# no upstream resolver\n"})


def kube_proxy(layout: Layout) -> Component:
    config = layout.config_dir / "kube-proxy.yaml"
    return Component("kube-proxy", (str(layout.program("kube-proxy")), f"--config={config}"), files={str(config): _yaml({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(layout.kubeconfig("kube-proxy"))},
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": layout.node_ip,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{layout.node_ip}/32"],
        # Leave the machine's conntrack sysctls alone (they are not ours to change).
        "conntrack": {"maxPerCore": 0, "min": 0},
        "iptables": {"localhostNodePorts": False},
    })})


def network_policy(layout: Layout, python: str) -> Component:
    return Component("network-policy", (python, "-m", "cluster.network_policy", "--kubeconfig", str(layout.admin_kubeconfig)))


def all_components(layout: Layout, python: str) -> list[Component]:
    """In start order; stopped in the reverse order."""
    return [etcd(layout), apiserver(layout), controller_manager(layout), scheduler(layout), containerd(layout),
            kubelet(layout), kube_proxy(layout), network_policy(layout, python)]
