"""Adapt a scenario's commands, scripts and manifests to the classroom, and name what cannot run.

A Killercoda scenario runs as root on a whole virtual machine with the internet; a lesson here runs
as a learner in a container, through the classroom's Docker gateway or in one namespace of a shared
cluster. Each rewrite below keeps the command's meaning where the classroom allows it:

- ``/root`` (and asset folders outside the home) -> ``$HOME`` (``~`` in prose): the learner's home
  is the only writable place besides ``/tmp``.
- ``docker run -p X:Y`` -> ``-p 127.0.0.1:X:Y``: the gateway refuses ports on other addresses.
- Docker Hub images the classroom registry mirrors (busybox; hello-world as the registry's hello)
  -> ``127.0.0.1:5000/library/...`` (``$REGISTRY/library/...`` on the cluster, where the nodes
  pull from the registry by another name). Other images are reported: they are not there.
- Kubernetes: ``-n X`` / ``--namespace X`` and ``metadata.namespace`` are dropped (the learner's
  kubeconfig names their one namespace), and pod specs get the securityContext Pod Security
  "restricted" demands.

Tools scenarios take for granted that the lesson images hold (Debian's ``curl`` and ``jq``) are
mapped as they are, and the report says so, once per line that runs them and nothing else that
cannot run. What cannot run (root-only commands, package managers, the internet, other nodes,
cluster-scoped objects, bind mounts) is not rewritten: it is reported as ``cannot-run`` so the step can be marked.
The rule for ambiguity is the gateway's: when a command cannot be read with confidence it is left
as it is and reported, never guessed into something else.
"""

from __future__ import annotations

import dataclasses
import re

import yaml

DOCKER_REGISTRY = "127.0.0.1:5000/library"
KUBERNETES_REGISTRY = "$REGISTRY/library"
# Docker Hub name -> name in the classroom registry's library/ (seed_registry pushes these).
MIRRORED_IMAGES = {"busybox": "busybox", "hello-world": "hello"}

CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "Node",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "RuntimeClass",
}
# kind -> path to the pod spec inside the object
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# A user the classroom's busybox images run as when a manifest names none (they default to root,
# which "restricted" refuses).
NON_ROOT_UID = 65534


@dataclasses.dataclass(frozen=True)
class Finding:
    line: int  # 1-based, within the text given
    kind: str  # rewritten, reported or cannot-run (see report.KINDS)
    reason: str


@dataclasses.dataclass(frozen=True)
class Environment:
    workspace: str  # plain, docker or kubernetes
    # absolute folders the scenario writes to that are moved under the home: (source, "$HOME/...")
    moved_paths: tuple[tuple[str, str], ...] = ()


# --- Paths ---------------------------------------------------------------------------------------

_ROOT_HOME = re.compile(r"(?<![\w$./-])/root(?![\w.-])")


def _path_pattern(source: str) -> re.Pattern:
    return re.compile(r"(?<![\w$./-])" + re.escape(source.rstrip("/")) + r"(?![\w.-])")


def _rewrite_paths(line: str, env: Environment, home: str) -> tuple[str, list[str]]:
    reasons = []
    for source, target in env.moved_paths:
        pattern = _path_pattern(source)
        if pattern.search(line):
            destination = target if home == "$HOME" else target.replace("$HOME", "~", 1)
            line = pattern.sub(destination.replace("\\", "\\\\"), line)
            reasons.append(f"{source} -> {destination} (only the home and /tmp are writable here)")
    if _ROOT_HOME.search(line):
        line = _ROOT_HOME.sub(home, line)
        reasons.append(f"/root -> {home} (the learner is not root; the home is theirs)")
    return line, reasons


def rewrite_prose(text: str, env: Environment) -> tuple[str, list[Finding]]:
    """Markdown outside code: only paths change (``/root`` -> ``~``)."""
    out, findings = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        line, reasons = _rewrite_paths(line, env, "~")
        findings += [Finding(number, "rewritten", reason) for reason in reasons]
        out.append(line)
    return "\n".join(out), findings


# --- Images --------------------------------------------------------------------------------------

_DOCKER_RUN = re.compile(r"\bdocker(?:\s+container)?\s+(run|create)\b")
_DOCKER_PULL = re.compile(r"\bdocker(?:\s+image)?\s+pull\b")
_FROM = re.compile(r"^(\s*FROM\s+(?:--platform=\S+\s+)?)(\S+)", re.IGNORECASE)
_YAML_IMAGE = re.compile(r"^(\s*-?\s*image:\s*)([\"']?)([^\s\"'#]+)\2")
_KUBECTL_IMAGE = re.compile(r"(--image(?:=|\s+))([\"']?)([^\s\"']+)\2")
# docker run/create options that take a value as the next word
_VALUE_OPTIONS = set(
    "-a -c -e -h -l -m -p -u -v -w --add-host --attach --cap-add --cap-drop --cgroup-parent --cidfile "
    "--cpu-period --cpu-quota --cpu-shares --cpus --cpuset-cpus --device --dns --entrypoint --env "
    "--env-file --expose --gpus --health-cmd --health-interval --health-retries --health-timeout "
    "--hostname --ip --label --label-file --link --log-driver --log-opt --memory --memory-swap --mount "
    "--name --network --net --network-alias --pid --platform --publish --pull --restart --runtime "
    "--security-opt --shm-size --stop-signal --stop-timeout --tmpfs --ulimit --user --userns --volume "
    "--volumes-from --workdir --pids-limit".split()
)


def _image_after(line: str, start: int) -> tuple[int, int] | None:
    """The span of the image in ``docker run ...`` from offset ``start`` (after ``run``)."""
    skip_value = False
    for match in re.finditer(r"\S+", line[start:]):
        word = match.group()
        if word in ("&&", "||", ";", "|") or word.startswith(("#", "$(")):
            return None
        if skip_value:
            skip_value = False
            continue
        if word.startswith("-"):
            skip_value = word in _VALUE_OPTIONS
            continue
        if word.startswith("\\"):
            continue
        return start + match.start(), start + match.end()
    return None


def _is_registry_name(image: str) -> bool:
    """Whether an image names a registry (or a variable) rather than a Docker Hub repository."""
    first = image.split("/", 1)[0]
    return "/" in image and ("." in first or ":" in first or first == "localhost") or image.startswith("$")


def _map_image(image: str, env: Environment) -> tuple[str, str, str] | None:
    """(new name, kind, reason), or None when the name is left alone."""
    if not image or _is_registry_name(image) or "{" in image:
        return None
    name, _, tag = image.partition("@")[0].partition(":")
    bare = name.removeprefix("docker.io/").removeprefix("library/")
    registry = KUBERNETES_REGISTRY if env.workspace == "kubernetes" else DOCKER_REGISTRY
    if bare in MIRRORED_IMAGES:
        new = f"{registry}/{MIRRORED_IMAGES[bare]}"
        extra = f" (tag {tag!r} dropped: the registry holds latest only)" if tag and tag != "latest" else ""
        if bare == "hello-world":
            extra += "; the classroom's hello also prints a greeting and exits"
        return new, "rewritten", f"image {image} -> {new}: the classroom registry mirrors it{extra}"
    return image, "reported", f"image {image} is not in the classroom registry (it mirrors {', '.join(sorted(MIRRORED_IMAGES))}): push it there, or the step cannot run"


def _rewrite_images(line: str, env: Environment) -> tuple[str, list[Finding]]:
    spans: list[tuple[int, int]] = []
    for pattern in (_DOCKER_RUN, _DOCKER_PULL):
        for match in pattern.finditer(line):
            span = _image_after(line, match.end())
            if span:
                spans.append(span)
    match = _FROM.match(line)
    if match:
        spans.append((match.start(2), match.end(2)))
    match = _YAML_IMAGE.match(line)
    if match:
        spans.append((match.start(3), match.end(3)))
    if "kubectl" in line:
        spans += [(m.start(3), m.end(3)) for m in _KUBECTL_IMAGE.finditer(line)]
    findings = []
    for start, end in sorted(set(spans), reverse=True):
        image = line[start:end]
        if image.lower() == "scratch" or image.startswith(("-", "$", "{")):
            continue
        mapped = _map_image(image, env)
        if mapped is None:
            continue
        new, kind, reason = mapped
        line = line[:start] + new + line[end:]
        findings.append(Finding(0, kind, reason))
    return line, findings


# --- Ports and namespaces ------------------------------------------------------------------------

_PUBLISH = re.compile(r"(?P<flag>(?:^|\s)(?:-p|--publish))(?P<sep>\s+|=)(?P<value>[\w.:/\[\]-]+)")


def _rewrite_ports(line: str) -> tuple[str, list[Finding]]:
    match = _DOCKER_RUN.search(line)
    if not match:
        return line, []
    end = len(line)
    stop = re.search(r"&&|\|\||;|\|", line[match.end():])
    if stop:
        end = match.end() + stop.start()
    image = _image_after(line, match.end())
    if image and image[0] < end:
        end = image[0]  # what follows the image is the container's command, not docker's options
    segment = line[match.end():end]
    findings = []

    def publish(m: re.Match) -> str:
        value = m.group("value")
        parts = value.split(":")
        if value.startswith("127.0.0.1:"):
            return m.group(0)
        if len(parts) == 3:
            new = f"127.0.0.1:{parts[1]}:{parts[2]}"
        elif len(parts) == 2:
            new = f"127.0.0.1:{value}"
        elif len(parts) == 1 and re.fullmatch(r"\d+(?:/\w+)?", value):
            new = f"127.0.0.1::{value}"
        else:
            findings.append(Finding(0, "reported", f"port {value} left as it is: not read with confidence"))
            return m.group(0)
        findings.append(Finding(0, "rewritten", f"-p {value} -> -p {new}: the classroom publishes ports on 127.0.0.1 only"))
        return f"{m.group('flag')}{m.group('sep')}{new}"

    segment = _PUBLISH.sub(publish, segment)
    if re.search(r"(?:^|\s)(-P|--publish-all)\b", segment):
        findings.append(Finding(0, "cannot-run", "-P publishes on every address: refused by the classroom gateway; publish with -p 127.0.0.1::PORT"))
    return line[: match.end()] + segment + line[end:], findings


_NAMESPACE_FLAG = re.compile(r"\s(?:-n|--namespace)(?:\s+|=)(?!-)[\w.$-]+")
_KUBECTL_SEGMENT = re.compile(r"\bkubectl\b[^|;&)]*")
_NAMESPACE_LINE = re.compile(r"^\s+namespace:\s*[\w.$\"'-]+\s*$")


def _rewrite_namespaces(line: str) -> tuple[str | None, list[Finding]]:
    """None: drop the line."""
    findings = []

    def strip(segment: re.Match) -> str:
        for match in _NAMESPACE_FLAG.finditer(segment.group()):
            findings.append(Finding(0, "rewritten", f"`{match.group().strip()}` removed: the learner works in their own namespace, which kubectl already uses"))
        return _NAMESPACE_FLAG.sub("", segment.group())

    # only inside the kubectl command itself: `head -n 1` after a pipe keeps its -n
    line = _KUBECTL_SEGMENT.sub(strip, line)
    if _NAMESPACE_LINE.match(line):
        findings.append(Finding(0, "rewritten", f"`{line.strip()}` removed from the manifest: objects go to the learner's own namespace"))
        return None, findings
    # kubectl's own -A, not a `grep -A 6` after a pipe
    if any(re.search(r"(\s-A\b|--all-namespaces)", segment.group()) for segment in _KUBECTL_SEGMENT.finditer(line)):
        findings.append(Finding(0, "cannot-run", "--all-namespaces: the learner may read their own namespace only"))
    return line, findings


# --- What cannot run -----------------------------------------------------------------------------

_SYSTEM_DIRS = "etc|usr|opt|var|srv|mnt|lib|bin|sbin|boot"
# where a command starts: the line's start, after ; & | ( or $(, or after sudo
_COMMAND = r"(?:^\s*|[;&|(]\s*|\bsudo\s+)"
CANNOT_RUN: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(pattern), reason)
    for pattern, reason in (
        (r"(?<![\w-])sudo\b", "sudo: the learner is not root here"),
        (r"\b(?:apt-get|apt|yum|dnf|apk|snap|zypper)\s+(?:-\S+\s+)*(?:install|update|upgrade|add|remove)\b",
         "installs packages: the sandbox has no package manager, no internet and no root"),
        (r"\b(?:curl|wget)\b.*\bhttps?://(?!localhost|127\.|\[::1\])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?!svc\b|local\b|internal\b)[a-z]{2,}\b",
         "fetches from the internet: sandboxes reach only this machine's classroom"),
        (r"\b(?:git\s+clone|pip3?\s+install|npm\s+install|helm\s+(?:repo|install))\b", "needs the internet, which sandboxes cannot reach"),
        (r"\b(?:systemctl|journalctl)\b|\bservice\s+\S+\s+(?:start|stop|restart|status)\b", "the sandbox has no init system or services"),
        (r"(?<![\w-])(?:ssh|scp)\s", "one machine here: there is no node01 or controlplane to reach by ssh"),
        (_COMMAND + r"(?:kubeadm|etcdctl|crictl|kubelet)\b", "administers the cluster itself: the learner has one namespace"),
        (r"\bkubectl\s+(?:get|create|delete|describe|edit|patch|label|annotate|cordon|uncordon|drain|taint|top)\s+(?:-\S+\s+)*"
         r"(?:clusterroles?|clusterrolebindings?|persistentvolumes?|pv|storageclass(?:es)?|sc|customresourcedefinitions?|crds?|"
         r"namespaces?|ns|nodes?|no)\b(?!-)",
         "a cluster-scoped object (nodes, namespaces, cluster roles, volumes...): the learner may use their own namespace only"),
        (r"\bkubectl\s+(?:cordon|uncordon|drain|taint)\b", "changes nodes: cluster-scoped, not the learner's"),
        (_COMMAND + r"(?:mount|umount|useradd|adduser|groupadd|modprobe|iptables|chroot)(?=\s|$)|\bsysctl\s+-w\b", "a root-only command"),
        (r"(?:>>?|" + _COMMAND + r"(?:tee(?:\s+-a)?|touch|mkdir(?:\s+-p)?|cp\s+(?:-\S+\s+)*\S+|mv\s+(?:-\S+\s+)*\S+))\s+[\"']?/(?:" + _SYSTEM_DIRS + r")/",
         "writes to a system folder: only the home and /tmp are writable here"),
        (r"--privileged\b", "--privileged is refused by the classroom gateway"),
        (r"--net(?:work)?(?:=|\s+)host\b", "host networking is refused by the classroom gateway"),
        (r"\bdocker\b.*(?:\s-v|--volume)(?:=|\s+)[\"']?[/~$]", "a bind mount of a host folder: refused by the classroom gateway (use a named volume)"),
        (r"\bdocker\s+(?:swarm|service|stack|node|plugin)\b", "swarm and plugins are not available through the classroom gateway"),
        (r"\bdocker-compose\b|\bdocker\s+compose\b", "compose is not in the sandbox image"),
        (r"\bkubectl\s+run\b", "kubectl run makes a pod without the securityContext Pod Security \"restricted\" demands: write a manifest"),
    )
)


# Programs a scenario's machine has and the lesson images hold too (sandbox.images.recipes puts
# them in the base, so every workspace's console has them): name -> the report's reason.
TOOLS_IN_IMAGES = {
    "curl": "curl runs as it is: Debian's curl is in the lesson images (https verifies with Debian's CA "
            "certificates; only this machine's classroom answers)",
    "jq": "jq runs as it is: Debian's jq is in the lesson images",
}
# run by the learner's shell (not `echo curl`, nor `docker exec web curl`, which runs in a container)
_TOOL = re.compile(_COMMAND + r"(?:(?:if|then|do|while|until|!)\s+)*(?:(?:timeout\s+\S+|time|watch(?:\s+-\S+)*)\s+)?(?:/usr)?(?:/bin/)?("
                   + "|".join(TOOLS_IN_IMAGES) + r")(?=\s|$|[;|&)])")


def _tools_available(line: str) -> list[Finding]:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return []
    names = dict.fromkeys(match.group(1) for match in _TOOL.finditer(line))
    return [Finding(0, "mapped", TOOLS_IN_IMAGES[name]) for name in names]


def _cannot_run(line: str) -> list[Finding]:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return []
    return [Finding(0, "cannot-run", f"`{stripped[:80]}`: {reason}") for pattern, reason in CANNOT_RUN if pattern.search(line)]


# --- Manifests -----------------------------------------------------------------------------------


def _dig(obj, path):
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, dict) else None


def _restrict_pod_spec(spec: dict) -> list[str]:
    """Add what Pod Security "restricted" needs; returns what was added (empty: nothing)."""
    added = []
    pod = spec.setdefault("securityContext", {}) if isinstance(spec.get("securityContext", {}), dict) else None
    if pod is None:
        return added
    containers = [c for key in ("initContainers", "containers") for c in (spec.get(key) or []) if isinstance(c, dict)]
    if pod.get("runAsNonRoot") is not True:
        pod["runAsNonRoot"] = True
        added.append("runAsNonRoot")
    user_named = "runAsUser" in pod or any(isinstance(c.get("securityContext"), dict) and "runAsUser" in c["securityContext"] for c in containers)
    own_images = all(str(c.get("image", "")).startswith("$REGISTRY/tutorial/") for c in containers)
    if not user_named and not own_images:
        pod["runAsUser"] = NON_ROOT_UID
        added.append(f"runAsUser {NON_ROOT_UID}")
    if not isinstance(pod.get("seccompProfile"), dict) or pod["seccompProfile"].get("type") not in ("RuntimeDefault", "Localhost"):
        pod["seccompProfile"] = {"type": "RuntimeDefault"}
        added.append("seccompProfile RuntimeDefault")
    for container in containers:
        context = container.setdefault("securityContext", {})
        if not isinstance(context, dict):
            continue
        if context.get("allowPrivilegeEscalation") is not False:
            context["allowPrivilegeEscalation"] = False
            added.append(f"{container.get('name', '?')}: allowPrivilegeEscalation false")
        capabilities = context.setdefault("capabilities", {})
        if isinstance(capabilities, dict) and "ALL" not in (capabilities.get("drop") or []):
            capabilities["drop"] = ["ALL"]
            added.append(f"{container.get('name', '?')}: capabilities drop ALL")
        if context.get("privileged"):
            context["privileged"] = False
            added.append(f"{container.get('name', '?')}: privileged false")
    if not pod:
        spec.pop("securityContext")
    return added


def _map_manifest_images(spec: dict, env: Environment) -> list[Finding]:
    findings = []
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict) and isinstance(container.get("image"), str):
                mapped = _map_image(container["image"], env)
                if mapped:
                    container["image"] = mapped[0]
                    findings.append(Finding(0, mapped[1], mapped[2]))
    return findings


def looks_like_manifest(text: str) -> bool:
    return bool(re.search(r"^kind:\s*\S+", text, re.MULTILINE)) and bool(re.search(r"^apiVersion:", text, re.MULTILINE))


def rewrite_manifests(text: str, env: Environment) -> tuple[str, list[Finding]]:
    """A YAML text of Kubernetes objects: restricted pod specs, no namespace, classroom images.

    Re-written (comments dropped) only when something changes; a text that does not parse is
    left as it is."""
    if not looks_like_manifest(text):
        return text, []
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return text, [Finding(1, "reported", "a manifest that does not parse as YAML was left as it is")]
    findings: list[Finding] = []
    changed = False
    for document in documents:
        if not isinstance(document, dict):
            continue
        kind = str(document.get("kind", ""))
        line = 1
        if kind in CLUSTER_SCOPED_KINDS:
            findings.append(Finding(line, "cannot-run", f"a {kind} is cluster-scoped: the learner may make objects in their own namespace only"))
        metadata = document.get("metadata")
        if env.workspace == "kubernetes" and isinstance(metadata, dict) and "namespace" in metadata:
            findings.append(Finding(line, "rewritten", f"metadata.namespace {metadata.pop('namespace')} removed: objects go to the learner's own namespace"))
            changed = True
        if kind in POD_SPEC_PATHS:
            spec = _dig(document, POD_SPEC_PATHS[kind])
            if spec is not None:
                image_findings = _map_manifest_images(spec, env)
                changed = changed or any(f.kind == "rewritten" for f in image_findings)
                findings += image_findings
                added = _restrict_pod_spec(spec)
                if added:
                    changed = True
                    findings.append(Finding(line, "rewritten", f"{kind} {(metadata or {}).get('name', '')}: securityContext for Pod Security \"restricted\" added ({', '.join(added)})"))
    if not changed:
        return text, findings
    dumped = yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, width=1000)
    findings.append(Finding(1, "reported", "the manifest was re-written as YAML: its comments and layout are not kept"))
    if not text.endswith("\n"):
        dumped = dumped.rstrip("\n")
    return dumped, findings


# --- Scripts and commands ------------------------------------------------------------------------

_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][\w]*)\1[^\n]*\n(?P<body>.*?)\n(?P<end>[ \t]*\2[ \t]*)(?=\n|$)", re.DOTALL)


def _rewrite_heredoc_manifests(text: str, env: Environment) -> tuple[str, list[Finding]]:
    findings: list[Finding] = []
    pieces, last = [], 0
    for match in _HEREDOC.finditer(text):
        body = match.group("body")
        new, found = rewrite_manifests(body, env) if env.workspace == "kubernetes" else (body, [])
        base = text.count("\n", 0, match.start("body"))
        findings += [dataclasses.replace(f, line=base + f.line) for f in found]
        pieces += [text[last : match.start("body")], new]
        last = match.end("body")
    pieces.append(text[last:])
    return "".join(pieces), findings


def rewrite_script(text: str, env: Environment, *, manifest: bool = False, judge: bool = True) -> tuple[str, list[Finding]]:
    """A shell script or a block of commands (or, with ``manifest``, a YAML block). ``judge``:
    name what cannot run (commands the learner runs; not text merely shown)."""
    findings: list[Finding] = []
    if manifest and env.workspace == "kubernetes":
        text, found = rewrite_manifests(text, env)
        findings += found
    elif env.workspace == "kubernetes":
        text, found = _rewrite_heredoc_manifests(text, env)
        findings += found
    # Heredoc bodies are a file's contents (a Dockerfile, a manifest), not commands to judge.
    contents = set()
    for match in _HEREDOC.finditer(text):
        first = text.count("\n", 0, match.start("body")) + 1
        contents.update(range(first, first + match.group("body").count("\n") + 1))
    out = []
    for number, line in enumerate(text.split("\n"), start=1):
        line, reasons = _rewrite_paths(line, env, "$HOME")
        found = [Finding(number, "rewritten", reason) for reason in reasons]
        if env.workspace == "docker":
            line, more = _rewrite_ports(line)
            found += more
        line, more = _rewrite_images(line, env)
        found += more
        if env.workspace == "kubernetes":
            new_line, more = _rewrite_namespaces(line)
            found += more
            if new_line is None:
                findings += [dataclasses.replace(f, line=number) for f in found]
                continue
            line = new_line
        if not manifest and judge and number not in contents:
            unrunnable = _cannot_run(line)
            found += unrunnable or _tools_available(line)
        findings += [dataclasses.replace(f, line=number) for f in found]
        out.append(line)
    return "\n".join(out), findings
