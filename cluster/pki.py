"""The local cluster's certificates and kubeconfigs, made once under ``data/cluster/pki``.

Two certificate authorities: one for Kubernetes (API server, kubelet, clients) and one for etcd,
so a Kubernetes client certificate never opens etcd. Keys are ECDSA P-256. Kubeconfigs embed their
certificates, so copying one file is enough to use it. Every address is the node's.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .layout import CLUSTER_NAME, KUBERNETES_SERVICE_IP, NODE_NAME, Layout

CA_DAYS = 3650
LEAF_DAYS = 825


@dataclass(frozen=True)
class Client:
    """A client certificate: who the API server (or etcd) takes the holder for."""

    name: str
    common_name: str
    organisation: str | None = None


# Components that talk to the API server, each with its own identity (RBAC has a role for each).
COMPONENT_CLIENTS = (
    Client("admin", "kubernetes-admin", "system:masters"),
    Client("controller-manager", "system:kube-controller-manager"),
    Client("scheduler", "system:kube-scheduler"),
    Client("kube-proxy", "system:kube-proxy"),
    Client("kubelet", f"system:node:{NODE_NAME}", "system:nodes"),
)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        parts.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(parts)


class Authority:
    """A CA on disk (``<name>.crt``/``<name>.key``), made when missing."""

    def __init__(self, directory: Path, name: str, common_name: str):
        self.directory, self.name = directory, name
        self.cert_path, self.key_path = directory / f"{name}.crt", directory / f"{name}.key"
        if not (self.cert_path.is_file() and self.key_path.is_file()):
            key = _new_key()
            now = datetime.datetime.now(datetime.timezone.utc)
            cert = (
                x509.CertificateBuilder()
                .subject_name(_name(common_name)).issuer_name(_name(common_name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256())
            )
            _write_private(self.key_path, _key_pem(key))
            self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        self.key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)

    def issue(self, name: str, common_name: str, *, organisation: str | None = None, server: bool = False,
              client: bool = False, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """A leaf certificate signed by this CA, made when missing or when its names changed."""
        cert_path, key_path = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        wanted_names = sorted([*dns, *ips])
        if cert_path.is_file() and key_path.is_file() and _names_of(cert_path) == wanted_names \
                and _issuer_matches(cert_path, self.cert):
            return cert_path, key_path
        key = _new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organisation)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.cert.public_key()), critical=False)
        )
        if dns or ips:
            alt = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        _write_private(key_path, _key_pem(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_path


def _names_of(cert_path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sorted([*alt.get_values_for_type(x509.DNSName), *(str(i) for i in alt.get_values_for_type(x509.IPAddress))])


def _issuer_matches(cert_path: Path, ca: x509.Certificate) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.issuer == ca.subject and cert.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)


def kubeconfig(*, server: str, ca: Path, cert: Path, key: Path, user: str) -> dict:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CLUSTER_NAME,
    }


def ensure(layout: Layout) -> None:
    """Every certificate, the service-account key and every kubeconfig; existing ones are kept."""
    pki = layout.pki
    pki.mkdir(parents=True, exist_ok=True)
    os.chmod(pki, 0o700)
    ca = Authority(pki, "ca", "tutorial-kubernetes-ca")
    etcd_ca = Authority(pki, "etcd-ca", "tutorial-etcd-ca")
    etcd_ca.issue("etcd-server", "etcd", server=True, client=True, dns=("localhost",), ips=("127.0.0.1",))
    etcd_ca.issue("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True)
    domain = layout.domain
    ca.issue("apiserver", "kube-apiserver", server=True,
             dns=("kubernetes", "kubernetes.default", "kubernetes.default.svc", f"kubernetes.default.svc.{domain}", "localhost"),
             ips=(layout.node_ip, KUBERNETES_SERVICE_IP, "127.0.0.1"))
    ca.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", organisation="system:masters", client=True)
    ca.issue("kubelet-server", NODE_NAME, server=True, dns=(NODE_NAME,), ips=(layout.node_ip,))
    sa_key = pki / "service-account.key"
    if not sa_key.is_file():
        key = _new_key()
        _write_private(sa_key, _key_pem(key))
        (pki / "service-account.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for client in COMPONENT_CLIENTS:
        cert, key = ca.issue(f"client-{client.name}", client.common_name, organisation=client.organisation, client=True)
        path = layout.admin_kubeconfig if client.name == "admin" else layout.kubeconfig(client.name)
        wanted = kubeconfig(server=layout.server, ca=ca.cert_path, cert=cert, key=key, user=client.common_name)
        text = yaml.safe_dump(wanted, sort_keys=False)
        if not path.is_file() or path.read_text() != text:
            _write_private(path, text.encode())
