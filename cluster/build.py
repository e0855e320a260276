"""Build the local cluster's programs from Go modules, and its two images.

The programs are built once per version set into ``~/.cache/tutorial-cluster/bin/<versions>``
(a folder is complete only once it holds ``.complete``; an interrupted build resumes from Go's
own build cache). ``go build -v`` names each package as it compiles; the count is the progress
the site shows. The pause program is built from ``pause.c`` with the C compiler, static. Images
(pause, CoreDNS) are FROM scratch and pushed to the classroom registry, where the node pulls them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from .layout import REGISTRY, SOURCES, Layout, read_versions

Progress = Callable[[str], None]

KUBERNETES_PROGRAMS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl")
# Static (no C library): kubectl runs in the learners' toolbox image and CoreDNS in an image, both
# FROM scratch. The node's own programs are built the default way.
STATIC_PROGRAMS = ("kubectl", "coredns")
PROGRAMS = (*KUBERNETES_PROGRAMS, "etcd", "coredns", "pause")
BUILD_TIMEOUT = 3 * 3600  # a first build on two cores takes about twenty minutes


class BuildError(Exception):
    pass


def _required(go_mod: Path, module: str) -> str | None:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.M)
    return match.group(1) if match else None


def check_versions(sources: Path = SOURCES) -> dict[str, str]:
    """The versions file and the Go modules agree, or a ``BuildError`` says where they differ."""
    versions = read_versions(sources / "versions.env")
    problems = []
    wanted = {
        ("kubernetes", "k8s.io/kubernetes"): versions["KUBERNETES_VERSION"],
        ("etcd", "go.etcd.io/etcd/server/v3"): versions["ETCD_VERSION"],
        ("coredns", "github.com/coredns/coredns"): versions["COREDNS_VERSION"],
    }
    for (folder, module), version in wanted.items():
        found = _required(sources / folder / "go.mod", module)
        if found != version:
            problems.append(f"cluster/{folder}/go.mod requires {module} {found}, versions.env says {version}")
    staging = versions["KUBERNETES_STAGING_VERSION"]
    for module, pinned in re.findall(r"^\s*(k8s\.io/\S+)\s+=>\s+\S+\s+(v\S+)", (sources / "kubernetes" / "go.mod").read_text(), re.M):
        if pinned != staging:
            problems.append(f"cluster/kubernetes/go.mod pins {module} to {pinned}, not {staging}")
    if problems:
        raise BuildError("; ".join(problems))
    return versions


def version_ldflags(version: str) -> str:
    """What ``kubectl version`` and the node report: the release, not "v0.0.0-master"."""
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.gitVersion={version}", f"-X {package}.gitMajor={major}",
                  f"-X {package}.gitMinor={minor}", f"-X {package}.gitTreeState=clean"]
    return " ".join(["-s -w", *flags])


def _go(args: list[str], *, cwd: Path, env: dict, progress: Progress, what: str, deadline: float) -> None:
    command = ["go", "build", "-v", "-trimpath", *args]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    compiled, tail = 0, []
    assert process.stdout is not None
    for line in process.stdout:
        tail = (tail + [line.rstrip()])[-30:]
        if line and not line.startswith(("go: ", "#")):
            compiled += 1
            if compiled % 25 == 0:
                progress(f"building {what}: {compiled} packages compiled")
        if time.monotonic() > deadline:
            process.kill()
            raise BuildError(f"building {what} took longer than {BUILD_TIMEOUT // 60} minutes")
    if process.wait() != 0:
        raise BuildError(f"building {what} failed:\n" + "\n".join(tail))


MIN_GO = (1, 26)  # what cluster/*/go.mod name


def _check_go() -> None:
    if shutil.which("go") is None:
        raise BuildError("Go is not installed: the local cluster is built from Go modules (Go 1.26 or newer; "
                         "https://go.dev/doc/install). Or set TUTORIAL_KUBECONFIG to another cluster.")
    found = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, timeout=30).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", found)
    if match and (int(match.group(1)), int(match.group(2))) < MIN_GO:
        raise BuildError(f"{found} is too old to build Kubernetes; Go {MIN_GO[0]}.{MIN_GO[1]} or newer is needed.")


def build_programs(layout: Layout, progress: Progress = print) -> Path:
    """The folder of built programs; built now when it is not complete yet."""
    target = layout.bin
    if (target / ".complete").is_file():
        return target
    _check_go()
    if shutil.which("gcc") is None:
        raise BuildError("gcc is not installed (apt-get install gcc libc6-dev): it builds the pause program.")
    versions = check_versions()
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + BUILD_TIMEOUT
    env = {**os.environ, "GOFLAGS": "-mod=mod -buildvcs=false", "GOWORK": "off"}
    for static in (False, True):
        missing = [p for p in KUBERNETES_PROGRAMS if (p in STATIC_PROGRAMS) == static and not (partial / p).is_file()]
        if missing:
            progress(f"building Kubernetes {versions['KUBERNETES_VERSION']} ({', '.join(missing)}): "
                     "about 20 minutes the first time")
            _go(["-ldflags", version_ldflags(versions["KUBERNETES_VERSION"]), "-o", str(partial) + "/",
                 *[f"k8s.io/kubernetes/cmd/{p}" for p in missing]],
                cwd=SOURCES / "kubernetes", env={**env, "CGO_ENABLED": "0"} if static else env,
                progress=progress, what="Kubernetes", deadline=deadline)
    if not (partial / "etcd").is_file():
        progress(f"building etcd {versions['ETCD_VERSION']}")
        _go(["-ldflags", "-s -w", "-o", str(partial / "etcd"), "go.etcd.io/etcd/server/v3"],
            cwd=SOURCES / "etcd", env=env, progress=progress, what="etcd", deadline=deadline)
    if not (partial / "coredns").is_file():
        progress(f"building CoreDNS {versions['COREDNS_VERSION']}")
        # Static: it runs in an image FROM scratch.
        _go(["-ldflags", "-s -w", "-o", str(partial / "coredns"), "github.com/coredns/coredns"],
            cwd=SOURCES / "coredns", env={**env, "CGO_ENABLED": "0"}, progress=progress, what="CoreDNS", deadline=deadline)
    if not (partial / "pause").is_file():
        result = subprocess.run(["gcc", "-Os", "-Wall", "-Werror", "-static", "-o", str(partial / "pause"), str(SOURCES / "pause.c")],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise BuildError(f"building pause failed: {result.stderr.strip()}")
    (partial / ".complete").write_text(json.dumps(versions, sort_keys=True) + "\n")
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    progress("programs built")
    return target


# -- images ---------------------------------------------------------------------------------------
def image_names(layout: Layout) -> dict[str, str]:
    """Repository and tag of each image the node needs, as it names them (the registry's ``localhost`` name)."""
    versions = layout.versions
    return {"pause": f"tutorial/pause:{versions['PAUSE_VERSION']}", "coredns": f"tutorial/coredns:{versions['COREDNS_VERSION']}"}


def image_reference(layout: Layout, name: str) -> str:
    return f"localhost:5000/{image_names(layout)[name]}"


def _in_registry(repository_tag: str) -> bool:
    repository, tag = repository_tag.rsplit(":", 1)
    request = urllib.request.Request(f"http://{REGISTRY}/v2/{repository}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status == 200
    except urllib.error.HTTPError:
        return False
    except OSError as exc:
        raise BuildError(f"the classroom registry does not answer at {REGISTRY} ({exc}): run scripts/start-registry.sh") from exc


def _docker(*args: str, timeout: float = 300) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise BuildError(f"docker {' '.join(args[:2])} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def ensure_images(layout: Layout, progress: Progress = print) -> None:
    """Push the pause and CoreDNS images to the classroom registry unless they are there."""
    for name, repository_tag in image_names(layout).items():
        if _in_registry(repository_tag):
            continue
        progress(f"pushing the {name} image to the classroom registry")
        with tempfile.TemporaryDirectory() as context:
            shutil.copy2(layout.program(name), Path(context) / name)
            entrypoint = json.dumps([f"/{name}"])
            (Path(context) / "Dockerfile").write_text(
                f"FROM scratch\nCOPY {name} /{name}\nUSER 65532:65532\nENTRYPOINT {entrypoint}\n" if name == "coredns"
                else f"FROM scratch\nCOPY {name} /{name}\nENTRYPOINT {entrypoint}\n")
            tag = f"{REGISTRY}/{repository_tag}"
            _docker("build", "-q", "-t", tag, context)
            _docker("push", tag)
