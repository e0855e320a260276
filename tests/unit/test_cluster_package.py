"""The local cluster's pure parts (cluster/): layout, versions, certificates, commands, firewall
rules, DNS config and pid files. The cluster itself is tested in tests/kubernetes."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from cluster import addons, build, components, node, pki
from cluster.layout import POD_CIDR, SERVICE_CIDR, Layout


@pytest.fixture
def layout(tmp_path):
    return Layout.from_environment({"TUTORIAL_CLUSTER_DIR": str(tmp_path / "state"), "TUTORIAL_CLUSTER_CACHE": str(tmp_path / "cache")})


def test_the_node_is_the_first_address_of_its_subnet_and_both_can_be_moved(tmp_path):
    moved = Layout.from_environment({"TUTORIAL_CLUSTER_DIR": str(tmp_path), "TUTORIAL_CLUSTER_SUBNET": "10.77.0.0/24",
                                     "TUTORIAL_CLUSTER_DOMAIN": "Class.Example."})
    assert moved.node_ip == "10.77.0.1" and moved.server == "https://10.77.0.1:6443" and moved.domain == "class.example"


@pytest.mark.parametrize("environ, word", [
    ({"TUTORIAL_CLUSTER_SUBNET": "not-a-network"}, "TUTORIAL_CLUSTER_SUBNET"),
    ({"TUTORIAL_CLUSTER_SUBNET": "10.0.0.0/30"}, "at least 8"),
    ({"TUTORIAL_CLUSTER_DOMAIN": "bad domain!"}, "TUTORIAL_CLUSTER_DOMAIN"),
])
def test_bad_settings_are_refused_with_the_variable_named(environ, word):
    with pytest.raises(ValueError, match=word):
        Layout.from_environment(environ)


def test_the_go_modules_match_the_versions_file():
    versions = build.check_versions()
    assert versions["KUBERNETES_VERSION"].startswith("v1.") and versions["KUBERNETES_STAGING_VERSION"].startswith("v0.")


def test_a_go_module_that_drifts_from_the_versions_file_is_named(tmp_path):
    sources = tmp_path / "cluster"
    shutil.copytree(build.SOURCES, sources, ignore=shutil.ignore_patterns("*.py", "__pycache__", "go.sum"))
    go_mod = sources / "kubernetes" / "go.mod"
    go_mod.write_text(go_mod.read_text().replace("k8s.io/api => k8s.io/api v0.35.4", "k8s.io/api => k8s.io/api v0.34.0"))
    with pytest.raises(build.BuildError, match="pins k8s.io/api to v0.34.0"):
        build.check_versions(sources)


def test_release_version_is_stamped_into_the_programs():
    flags = build.version_ldflags("v1.35.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.35.4" in flags and "gitMinor=35" in flags


def test_certificates_name_every_address_a_client_uses_and_are_kept(layout):
    pki.ensure(layout)
    cert = x509.load_pem_x509_certificate((layout.pki / "apiserver.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(i) for i in names.get_values_for_type(x509.IPAddress)}
    assert {layout.node_ip, "10.96.0.1"} <= ips
    assert f"kubernetes.default.svc.{layout.domain}" in names.get_values_for_type(x509.DNSName)
    before = (layout.pki / "ca.crt").read_bytes(), (layout.pki / "apiserver.crt").read_bytes()
    pki.ensure(layout)
    assert ((layout.pki / "ca.crt").read_bytes(), (layout.pki / "apiserver.crt").read_bytes()) == before
    assert oct((layout.pki / "ca.key").stat().st_mode & 0o777) == "0o600"


def test_etcd_has_its_own_authority(layout):
    pki.ensure(layout)
    kube_ca = x509.load_pem_x509_certificate((layout.pki / "ca.crt").read_bytes())
    etcd_server = x509.load_pem_x509_certificate((layout.pki / "etcd-server.crt").read_bytes())
    assert etcd_server.issuer != kube_ca.subject


def test_the_admin_kubeconfig_is_one_self_contained_file(layout):
    pki.ensure(layout)
    config = yaml.safe_load(layout.admin_kubeconfig.read_text())
    assert config["clusters"][0]["cluster"]["server"] == layout.server
    user = config["users"][0]["user"]
    assert "client-certificate-data" in user and "client-key-data" in user


def test_etcd_and_the_component_ports_listen_on_loopback_only(layout):
    argv = " ".join(components.etcd(layout).argv)
    assert "https://127.0.0.1:2379" in argv and "0.0.0.0" not in argv
    for component in (components.controller_manager(layout), components.scheduler(layout)):
        assert "--bind-address=127.0.0.1" in component.argv
    kubelet = yaml.safe_load(components.kubelet(layout).files[str(layout.config_dir / "kubelet.yaml")])
    assert kubelet["readOnlyPort"] == 0 and kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["clusterDomain"] == layout.domain and kubelet["failCgroupV1"] is False


def test_a_changed_config_changes_the_fingerprint(tmp_path, layout):
    other = Layout.from_environment({"TUTORIAL_CLUSTER_DIR": str(layout.state), "TUTORIAL_CLUSTER_CACHE": str(layout.cache),
                                     "TUTORIAL_CLUSTER_DOMAIN": "class.example"})
    assert components.kubelet(layout).fingerprint != components.kubelet(other).fingerprint
    assert components.kubelet(layout).fingerprint == components.kubelet(layout).fingerprint


def test_toolboxes_reach_only_the_api_server_and_pods_nothing_off_the_cluster(layout):
    rules = node.firewall_rules(layout)
    pre = [" ".join(r) for r in rules[f"mangle {node.PRE_CHAIN}"]]
    subnet = str(layout.subnet)
    assert pre.index(f"-s {subnet} -d {layout.node_ip} -p tcp --dport 6443 -j RETURN") < pre.index(f"-s {subnet} -j DROP")
    assert f"-s {POD_CIDR} -j DROP" == pre[-1]
    assert not any(r.startswith(f"-s {subnet}") and "RETURN" in r and "6443" not in r and "ESTABLISHED" not in r for r in pre)
    forward = [" ".join(r) for r in rules[f"filter {node.FORWARD_CHAIN}"]]
    assert forward[0] == f"-s {POD_CIDR} -d {POD_CIDR} -j {node.NETPOL_CHAIN}"
    assert f"-s {POD_CIDR} -d {SERVICE_CIDR} -j REJECT" in forward


def test_dns_answers_cluster_names_and_refuses_the_rest():
    corefile = addons.corefile("class.example")
    assert "kubernetes class.example in-addr.arpa" in corefile and "forward" not in corefile
    assert "rcode NXDOMAIN" in corefile


def test_the_dns_pod_would_pass_pod_security_restricted(layout):
    deployment = next(o for o in addons.coredns_objects(layout) if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["image"].startswith("localhost:5000/tutorial/coredns:")


def test_a_pid_file_of_a_dead_or_different_process_is_not_running(layout):
    argv = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE)
    try:
        # Popen returns while the child's exec is still under way, when /proc may show no command
        # line yet: the child says when it runs.
        assert process.stdout.readline() == b"up\n"
        layout.run_dir.mkdir(parents=True)
        record = {"pid": process.pid, "argv": argv, "fingerprint": "x"}
        node.pid_file(layout, "thing").write_text(json.dumps(record))
        assert node.running(layout, "thing")["pid"] == process.pid
        node.pid_file(layout, "thing").write_text(json.dumps({**record, "argv": ["/usr/bin/etcd"]}))  # pid reused
        assert node.running(layout, "thing") is None
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    node.pid_file(layout, "thing").write_text(json.dumps(record))
    assert node.running(layout, "thing") is None
    node.pid_file(layout, "thing").write_text("not json")
    assert node.running(layout, "thing") is None


def test_a_component_that_exits_at_once_is_reported_with_its_log(layout):
    # A shell, not Python: it exits within the start's short look even on a busy machine.
    broken = components.Component("broken", ("/bin/sh", "-c", "echo no config file; exit 3"))
    with pytest.raises(node.NodeError, match="no config file"):
        node.start(layout, broken)
    assert node.running(layout, "broken") is None


def test_start_is_idempotent_and_restarts_on_a_changed_config(layout):
    sleeper = components.Component("sleeper", (sys.executable, "-c", "import time; time.sleep(60)"))
    try:
        first, started = node.start(layout, sleeper)
        assert started
        assert node.start(layout, sleeper) == (first, False)
        changed = components.Component("sleeper", sleeper.argv, files={str(layout.state / "x.conf"): "new"})
        second, started = node.start(layout, changed)
        assert started and second != first and not node._alive(first)
    finally:
        node.stop(layout, "sleeper")
    assert node.running(layout, "sleeper") is None


def test_the_node_subnet_is_private():
    assert ipaddress.ip_network(Layout.from_environment({}).subnet).is_private


def _claim_by_other_checkout(tmp_path, monkeypatch):
    from cluster import control
    other = Layout.from_environment({"TUTORIAL_CLUSTER_DIR": str(tmp_path / "other")})
    other.run_dir.mkdir(parents=True)
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"state": str(other.state)}))
    monkeypatch.setattr(control, "MACHINE_CLAIM", claim)
    return control, other


def test_a_claim_left_by_another_checkout_whose_node_is_stopped_does_not_block_starting(tmp_path, monkeypatch, layout):
    control, other = _claim_by_other_checkout(tmp_path, monkeypatch)
    node.pid_file(other, "kube-apiserver").write_text(json.dumps({"pid": 999_999_999, "argv": ["kube-apiserver"]}))
    control.Cluster(layout, progress=lambda message: None)._check_other_checkout()


def test_another_checkouts_running_node_blocks_starting_and_says_how_to_stop_it(tmp_path, monkeypatch, layout):
    control, other = _claim_by_other_checkout(tmp_path, monkeypatch)
    this_process = Path("/proc/self/cmdline").read_bytes().decode().split("\0")[:-1]
    node.pid_file(other, "etcd").write_text(json.dumps({"pid": os.getpid(), "argv": this_process}))
    with pytest.raises(control.ClusterError, match="another checkout's cluster runs .* -m cluster stop"):
        control.Cluster(layout, progress=lambda message: None)._check_other_checkout()
