"""The classroom policy of the Docker gateway: pure functions, no engine calls, unit-tested.

Default deny (SECURITY.md): a request is forwarded only if its normalised path is on the allowlist,
its JSON body parses strictly (duplicate or case-ambiguous keys refused, as the engine would read
them case-insensitively) and survives the rules below; what is forwarded is always the body this
module re-encoded, never the learner's bytes.

A refusal is :class:`PolicyDenied`; its message starts with ``denied by classroom policy:`` so the
docker CLI prints it as ``Error response from daemon: denied by classroom policy: ...``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from ..engine.api import API_VERSION  # noqa: F401 - the relays send learners' calls with it
from ..engine.labels import LABEL_INSTALL, LABEL_LESSON, LABEL_OWNER, LABEL_SANDBOX  # noqa: F401

# Marks objects a learner made through the gateway (the sandbox container itself lacks it).
LABEL_CREATED = "tutorial.gateway"
CREATED_VALUE = "learner"
# Project-built images (lesson images) carry this label; they are shared and read-only.
LABEL_IMAGE = "tutorial.image"
SHARED_NAMESPACE = "library"

MAX_JSON_BODY = 1024 * 1024
MiB = 1024 * 1024


class PolicyDenied(Exception):
    """A request the classroom policy refuses; ``status`` is the HTTP status sent back."""

    def __init__(self, message: str, status: int = 403):
        self.status = status
        self.message = message if status != 403 else f"denied by classroom policy: {message}"
        super().__init__(self.message)


def not_found(message: str) -> PolicyDenied:
    return PolicyDenied(message, status=404)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Caps for what a learner creates through the gateway (``settings.GATEWAY_LIMITS``)."""

    memory_default: int = 256 * MiB
    memory_max: int = 512 * MiB
    nano_cpus_max: int = 1_000_000_000
    pids_default: int = 128
    pids_max: int = 256
    nofile: int = 1024
    shm_max: int = 64 * MiB
    tmpfs_max: int = 64 * MiB
    log_max_size: str = "1m"
    restart_retries_max: int = 10
    containers_max: int = 10
    images_max: int = 10
    images_bytes_max: int = 2048 * MiB
    volumes_max: int = 10
    networks_max: int = 5
    build_context_max: int = 200 * MiB
    # A learner container's writable layer past this is killed (the engine has no size cap on
    # ext4/overlay2 without project quotas); checked by the gateway process every disk_check_interval.
    container_disk_max: int = 1024 * MiB
    disk_check_interval: float = 30.0
    upload_max: int = 256 * MiB
    # Learner networks get small subnets from this range: the engine's default address pools
    # hold only about 30 bridge networks, fewer than one class of learners with their own.
    network_pool: str = "10.213.0.0/16"
    network_prefix: int = 26
    # Every published port is one docker-proxy process on the host, outside every learner's cgroup:
    # per container, and over all of a learner's containers (the proxy counts the existing ones).
    ports_per_container_max: int = 10
    ports_per_learner_max: int = 20
    exposed_ports_max: int = 64
    # Every healthcheck probe is an exec the engine runs (a containerd task, host CPU outside the
    # learner's cgroup): probes at most once a second, timeouts and start periods bounded (seconds).
    health_interval_min: float = 1.0
    health_interval_max: float = 3600.0
    health_timeout_max: float = 300.0
    health_retries_max: int = 10
    # `docker stop` waits this long before SIGKILL; cleanup never waits on it (remove with force).
    stop_timeout_max: int = 60
    # Counts in a create body the engine acts on one by one.
    mounts_max: int = 16  # Binds + Mounts + Tmpfs
    env_max: int = 256
    list_max: int = 32  # Dns, DnsOptions, DnsSearch, ExtraHosts, GroupAdd, Entrypoint/Cmd stay free
    console_max: int = 1000  # ConsoleSize rows and columns


@dataclasses.dataclass(frozen=True)
class Learner:
    """Who is behind one gateway socket: the socket itself identifies the sandbox."""

    sandbox_id: str
    owner_id: str
    lesson: str = ""
    registry: str = "127.0.0.1:5000"
    install: str = ""

    @property
    def network(self) -> str:
        """The learner's own bridge network, made on first need."""
        return f"tutorial-learner-{self.sandbox_id[:12]}"

    @property
    def namespace(self) -> str:
        """The learner's own namespace in the classroom registry."""
        return f"learner-{self.owner_id}"

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL_SANDBOX: self.sandbox_id,
            LABEL_OWNER: self.owner_id,
            LABEL_LESSON: self.lesson,
            LABEL_CREATED: CREATED_VALUE,
            **({LABEL_INSTALL: self.install} if self.install else {}),
        }

    @property
    def label_filters(self) -> list[str]:
        return [f"{LABEL_SANDBOX}={self.sandbox_id}", f"{LABEL_CREATED}={CREATED_VALUE}"]

    def owns_labels(self, labels: dict | None) -> bool:
        labels = labels or {}
        return labels.get(LABEL_SANDBOX) == self.sandbox_id and labels.get(LABEL_CREATED) == CREATED_VALUE


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------
_VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(?=/)")


def normalise_target(target: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a request target into a canonical path (no version prefix) and query pairs.

    Refuses what the engine's router could read differently from us: ``//``, ``.`` and ``..``
    segments, encoded slashes, control characters, and versions older than ours (old API versions
    accept a HostConfig on ``start``, a known policy bypass).
    """
    if not target.startswith("/"):
        raise PolicyDenied("the request path must start with /", status=400)
    raw_path, _, raw_query = target.partition("?")
    if "#" in target:
        raise PolicyDenied("fragments are not allowed in request paths", status=400)
    lowered = raw_path.lower()
    if "%2f" in lowered or "%5c" in lowered or "%00" in lowered or "%25" in lowered:
        raise PolicyDenied("encoded slashes or escapes in the path are not allowed", status=400)
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise PolicyDenied("the request path is not valid UTF-8", status=400) from None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path) or "\\" in path:
        raise PolicyDenied("control characters in the path are not allowed", status=400)
    match = _VERSION_PREFIX.match(path)
    if match:
        major, minor = int(match.group(1)), int(match.group(2))
        if (major, minor) < (1, 40):
            raise PolicyDenied(f"API version {major}.{minor} is too old; the gateway speaks 1.40 and 1.41", status=400)
        path = path[match.end():]
    if "//" in path:
        raise PolicyDenied("// in the request path is not allowed", status=400)
    segments = path.split("/")[1:]
    if any(seg in (".", "..") for seg in segments):
        raise PolicyDenied(". or .. in the request path is not allowed", status=400)
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    try:
        query = parse_qsl(raw_query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise PolicyDenied("the query string is not valid UTF-8", status=400) from None
    return path, query


# Keys that may legitimately repeat in a query string (docker build -t a -t b).
REPEATABLE_QUERY_KEYS = frozenset({"t"})


def query_dict(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Single-valued query parameters; a repeated key (other than build's ``t``) is refused,
    since the engine reads the first value and we must judge the same one."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out and key not in REPEATABLE_QUERY_KEYS:
            raise PolicyDenied(f"the query parameter {key!r} is repeated", status=400)
        out.setdefault(key, value)
    return out


def encode_query(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs)


# --------------------------------------------------------------------------------------------
# Strict JSON
# --------------------------------------------------------------------------------------------
def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key, value in pairs:
        # The engine (Go's encoding/json) matches keys with Unicode simple case folding:
        # "privileged", "PRIVILEGED" and "Privileged" are one field. casefold() covers the
        # special foldings too (U+017F long s -> s, U+212A Kelvin sign -> k).
        folded = key.casefold()
        if folded in seen:
            if seen[folded] == key:
                raise PolicyDenied(f"duplicate JSON key {key!r}", status=400)
            raise PolicyDenied(f"ambiguous JSON keys {seen[folded]!r} and {key!r}", status=400)
        seen[folded] = key
        out[key] = value
    return out


def _no_constants(name: str):
    raise PolicyDenied(f"{name} is not valid JSON", status=400)


def loads_strict(raw: bytes) -> Any:
    """Parse a JSON body as strictly as the policy needs: UTF-8 only, one value, no NaN,
    no duplicate or case-ambiguous keys at any depth."""
    if len(raw) > MAX_JSON_BODY:
        raise PolicyDenied("the request body is too large", status=413)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyDenied("the request body is not valid UTF-8", status=400) from None
    if not text.strip():
        return None
    try:
        return json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise PolicyDenied(f"the request body is not valid JSON ({exc.msg})", status=400) from None


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode()


def is_zero(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def canonical(obj: Any, fields: dict[str, str | None], where: str) -> dict:
    """Map ``obj``'s keys case-insensitively onto ``fields`` (canonical name -> refusal message or
    None when allowed). Unknown or refused fields are dropped when zero-valued (the CLI sends many
    empty fields) and refused otherwise."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise PolicyDenied(f"{where} must be a JSON object", status=400)
    index = {name.casefold(): name for name in fields}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = index.get(key.casefold())
        if name is None:
            if is_zero(value):
                continue
            raise PolicyDenied(f"{where}.{key} is not allowed")
        if fields[name] is not None:
            if is_zero(value):
                continue
            raise PolicyDenied(fields[name])
        out[name] = value
    return out


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PolicyDenied(f"{where} must be a string", status=400)
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyDenied(f"{where} must be an integer", status=400)
    return value


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyDenied(f"{where} must be a list of strings", status=400)
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise PolicyDenied(f"{where} must be a map of strings", status=400)
    return value


def own_labels(learner: Learner, labels: Any, where: str = "Labels") -> dict[str, str]:
    """The learner's labels with every ``tutorial.*`` key replaced by the sandbox's own."""
    kept = {k: v for k, v in _str_map(labels, where).items() if not k.casefold().startswith("tutorial.")}
    kept.update(learner.labels)
    return kept


# --------------------------------------------------------------------------------------------
# Names and references
# --------------------------------------------------------------------------------------------
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")


def check_name(name: str, what: str) -> str:
    if not NAME_RE.match(name or ""):
        raise PolicyDenied(f"invalid {what} name {name!r}", status=400)
    return name


@dataclasses.dataclass(frozen=True)
class Reference:
    registry: str  # "docker.io" for names without a registry part
    path: str  # e.g. "library/hello" or "learner-3/app"
    tag: str = "latest"
    digest: str = ""

    @property
    def name(self) -> str:
        """Repository name as the engine prints it (docker.io names short)."""
        if self.registry == "docker.io":
            return self.path[len("library/"):] if self.path.startswith("library/") else self.path
        return f"{self.registry}/{self.path}"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}"


_REF_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


def parse_reference(ref: str, tag: str = "") -> Reference:
    """Parse an image reference the way the docker CLI normalises it."""
    ref = (ref or "").strip()
    if not ref:
        raise PolicyDenied("an image name is required", status=400)
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise PolicyDenied(f"invalid digest {digest!r}", status=400)
    head, sep, rest = ref.partition("/")
    if sep and ("." in head or ":" in head or head == "localhost"):
        registry, remainder = head, rest
    else:
        registry, remainder = "docker.io", ref
    last = remainder.rsplit("/", 1)[-1]
    if ":" in last:
        remainder, own_tag = remainder.rsplit(":", 1)
        tag = tag or own_tag
    if registry == "docker.io" and "/" not in remainder:
        remainder = f"library/{remainder}"
    if not _REF_RE.match(remainder):
        raise PolicyDenied(f"invalid image name {ref!r}", status=400)
    tag = tag or "latest"
    if not _TAG_RE.match(tag):
        raise PolicyDenied(f"invalid tag {tag!r}", status=400)
    return Reference(registry, remainder, tag, digest)


def looks_like_image_id(ref: str) -> bool:
    return bool(re.fullmatch(r"(sha256:)?[0-9a-f]{4,64}", ref))


def check_pull(learner: Learner, ref: Reference) -> None:
    """Pulls come from the classroom registry: its shared ``library/`` or the learner's own namespace."""
    if ref.registry != learner.registry:
        raise PolicyDenied(
            f"images come from the classroom registry only: pull {learner.registry}/library/NAME "
            f"(or your own {learner.registry}/{learner.namespace}/NAME), not {ref.name}"
        )
    namespace = ref.path.split("/", 1)[0]
    if namespace not in (SHARED_NAMESPACE, learner.namespace) or "/" not in ref.path:
        raise PolicyDenied(
            f"you may pull only {learner.registry}/library/... and your own {learner.registry}/{learner.namespace}/..."
        )


def check_push(learner: Learner, ref: Reference) -> None:
    if ref.registry != learner.registry or not ref.path.startswith(f"{learner.namespace}/"):
        raise PolicyDenied(
            f"you may push only to your own namespace {learner.registry}/{learner.namespace}/ "
            f"(tag it first: docker tag IMAGE {learner.registry}/{learner.namespace}/NAME)"
        )


def check_tag_target(learner: Learner, ref: Reference) -> None:
    """A learner may name images freely, except inside the registry's other namespaces."""
    if ref.digest:
        raise PolicyDenied("a tag cannot be a digest", status=400)
    if ref.registry == learner.registry and not ref.path.startswith(f"{learner.namespace}/"):
        raise PolicyDenied(
            f"in the classroom registry you may use only your own namespace {learner.registry}/{learner.namespace}/"
        )
    if ref.registry != learner.registry and ref.registry != "docker.io":
        raise PolicyDenied(f"the only registry here is {learner.registry}")


# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------
DENIED_HOST_FIELDS = {
    "Privileged": "--privileged is not allowed",
    "CapAdd": "--cap-add is not allowed",
    "Devices": "--device is not allowed",
    "DeviceRequests": "--gpus and device requests are not allowed",
    "DeviceCgroupRules": "--device-cgroup-rule is not allowed",
    "VolumesFrom": "--volumes-from is not allowed",
    "VolumeDriver": "--volume-driver is not allowed",
    "Links": "--link is not allowed (use your own network)",
    "Sysctls": "--sysctl is not allowed",
    "MaskedPaths": "changing masked paths is not allowed",
    "ReadonlyPaths": "changing read-only paths is not allowed",
    "Cgroup": "--cgroup is not allowed",
    "CgroupParent": "--cgroup-parent is not allowed",
    "StorageOpt": "--storage-opt is not allowed",
    "OomKillDisable": "--oom-kill-disable is not allowed",
    "PublishAllPorts": "-P is not allowed; publish each port on 127.0.0.1 with -p 127.0.0.1::PORT",
    "CpuPeriod": "--cpu-period is not allowed; use --cpus",
    "CpuQuota": "--cpu-quota is not allowed; use --cpus",
    "CpuRealtimePeriod": "--cpu-rt-period is not allowed",
    "CpuRealtimeRuntime": "--cpu-rt-runtime is not allowed",
    "CpusetMems": "--cpuset-mems is not allowed",
    "KernelMemory": "--kernel-memory is not allowed",
    "KernelMemoryTCP": "kernel TCP memory limits are not allowed",
    "BlkioWeightDevice": "--blkio-weight-device is not allowed",
    "BlkioDeviceReadBps": "--device-read-bps is not allowed",
    "BlkioDeviceWriteBps": "--device-write-bps is not allowed",
    "BlkioDeviceReadIOps": "--device-read-iops is not allowed",
    "BlkioDeviceWriteIOps": "--device-write-iops is not allowed",
    "CpuCount": None, "CpuPercent": None, "IOMaximumIOps": None, "IOMaximumBandwidth": None,
}
# CpuCount and friends are Windows-only: allowed through as zero, refused otherwise below.
for _windows_only in ("CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth"):
    DENIED_HOST_FIELDS[_windows_only] = f"{_windows_only} is not allowed"

ALLOWED_HOST_FIELDS = (
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "CapDrop", "CgroupnsMode", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "IpcMode",
    "OomScoreAdj", "PidMode", "ReadonlyRootfs", "SecurityOpt", "Tmpfs", "UTSMode", "UsernsMode", "ShmSize",
    "Runtime", "ConsoleSize", "Isolation", "CpuShares", "Memory", "NanoCpus", "BlkioWeight", "CpusetCpus",
    "MemoryReservation", "MemorySwap", "MemorySwappiness", "PidsLimit", "Ulimits", "Mounts", "Init",
)

ALLOWED_CONFIG_FIELDS = (
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "WorkingDir", "Entrypoint",
    "NetworkDisabled", "Labels", "StopSignal", "StopTimeout", "Shell", "HostConfig", "NetworkingConfig",
)
DENIED_CONFIG_FIELDS = {
    "Volumes": "anonymous volumes are not allowed: name them (-v NAME:/path)",
    "MacAddress": "--mac-address is not allowed",
    "OnBuild": "OnBuild is not allowed here",
}

NAMESPACE_MODES = {
    # field: (flag, values allowed)
    "PidMode": ("--pid", {""}),
    "IpcMode": ("--ipc", {"", "private", "none", "shareable"}),
    "UTSMode": ("--uts", {""}),
    "UsernsMode": ("--userns", {""}),
    "CgroupnsMode": ("--cgroupns", {"", "private"}),
}
SAFE_TMPFS_OPTIONS = re.compile(r"^(rw|ro|noexec|exec|nosuid|nodev|mode=[0-7]{3,4}|size=\d+[kmg]?|uid=\d+|gid=\d+)$")
_SIZE_RE = re.compile(r"^(\d+)([kmg]?)$")


def _size_bytes(text: str) -> int:
    match = _SIZE_RE.match(text.lower())
    if not match:
        raise PolicyDenied(f"invalid size {text!r}", status=400)
    return int(match.group(1)) * {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}[match.group(2)]


@dataclasses.dataclass
class CreatePlan:
    """A container create body ready to forward, and what the proxy must check or make first."""

    body: dict
    image: str
    networks: list[str]  # networks the learner named (ownership to check); the own one is made on need
    volumes: list[str]  # named volumes to check (owned) or make (labelled)
    uses_own_network: bool

    @property
    def published_ports(self) -> int:
        return published_ports(self.body["HostConfig"].get("PortBindings"))


def _security_opts(value: Any) -> list[str]:
    for opt in _str_list(value, "SecurityOpt"):
        flat = opt.replace("=", ":").lower()
        if "unconfined" in flat:
            raise PolicyDenied(f"--security-opt {opt} is not allowed (seccomp and AppArmor stay on)")
        if flat.startswith("label:disable") or flat.startswith("label"):
            raise PolicyDenied(f"--security-opt {opt} is not allowed")
        if flat.startswith("no-new-privileges"):
            if flat not in ("no-new-privileges", "no-new-privileges:true"):
                raise PolicyDenied("--security-opt no-new-privileges=false is not allowed")
            continue
        raise PolicyDenied(f"--security-opt {opt} is not allowed")
    return ["no-new-privileges:true"]


def _binds(value: Any) -> tuple[list[str], list[str]]:
    binds, volumes = [], []
    for bind in _str_list(value, "Binds"):
        parts = bind.split(":")
        if len(parts) < 2:
            raise PolicyDenied(f"anonymous volumes are not allowed: name it (-v NAME:{bind})")
        source = parts[0]
        if source.startswith(("/", ".", "~")) or "\\" in source:
            raise PolicyDenied(f"-v {bind}: bind mounts of host paths are not allowed; use a named volume")
        if len(parts) > 3:
            raise PolicyDenied(f"invalid volume {bind!r}", status=400)
        if len(parts) == 3 and not set(parts[2].split(",")) <= {"ro", "rw", "nocopy", "z", "Z"}:
            raise PolicyDenied(f"volume options {parts[2]!r} are not allowed")
        if not parts[1].startswith("/"):
            raise PolicyDenied(f"invalid volume destination {parts[1]!r}", status=400)
        volumes.append(check_name(source, "volume"))
        binds.append(bind)
    return binds, volumes


def _mounts(value: Any, limits: Limits) -> tuple[list[dict], list[str]]:
    if value is None:
        return [], []
    if not isinstance(value, list):
        raise PolicyDenied("Mounts must be a list", status=400)
    mounts, volumes = [], []
    fields = {"Type": None, "Source": None, "Target": None, "ReadOnly": None, "Consistency": None,
              "VolumeOptions": None, "TmpfsOptions": None,
              "BindOptions": "bind mounts of host paths are not allowed"}
    for raw in value:
        mount = canonical(raw, fields, "Mounts[]")
        kind = mount.get("Type")
        target = _str(mount.get("Target", ""), "Mounts[].Target")
        if not target.startswith("/"):
            raise PolicyDenied(f"invalid mount target {target!r}", status=400)
        if kind == "volume":
            source = check_name(_str(mount.get("Source", ""), "Mounts[].Source"), "volume")
            options = canonical(mount.get("VolumeOptions"), {
                "NoCopy": None, "Labels": None,
                "DriverConfig": "volume drivers and driver options are not allowed"}, "VolumeOptions")
            clean = {"Type": "volume", "Source": source, "Target": target,
                     "ReadOnly": bool(mount.get("ReadOnly", False))}
            if options.get("NoCopy"):
                clean["VolumeOptions"] = {"NoCopy": True}
            volumes.append(source)
            mounts.append(clean)
        elif kind == "tmpfs":
            if mount.get("Source"):
                raise PolicyDenied("a tmpfs mount has no source", status=400)
            options = canonical(mount.get("TmpfsOptions"), {"SizeBytes": None, "Mode": None}, "TmpfsOptions")
            size = _int(options.get("SizeBytes", limits.tmpfs_max), "SizeBytes")
            clean_opts = {"SizeBytes": min(size, limits.tmpfs_max) if size > 0 else limits.tmpfs_max}
            if "Mode" in options:
                clean_opts["Mode"] = _int(options["Mode"], "Mode")
            mounts.append({"Type": "tmpfs", "Target": target, "ReadOnly": bool(mount.get("ReadOnly", False)),
                           "TmpfsOptions": clean_opts})
        elif kind == "bind":
            raise PolicyDenied("--mount type=bind: bind mounts of host paths are not allowed; use a named volume")
        else:
            raise PolicyDenied(f"--mount type={kind} is not allowed")
    return mounts, volumes


def _tmpfs(value: Any, limits: Limits) -> dict[str, str]:
    out = {}
    for path, options in _str_map(value, "Tmpfs").items():
        if not path.startswith("/"):
            raise PolicyDenied(f"invalid tmpfs path {path!r}", status=400)
        opts = [o for o in options.split(",") if o]
        sized = []
        for opt in opts:
            if not SAFE_TMPFS_OPTIONS.match(opt):
                raise PolicyDenied(f"--tmpfs option {opt!r} is not allowed")
            if opt.startswith("size="):
                sized.append(min(_size_bytes(opt[5:]), limits.tmpfs_max))
        opts = [o for o in opts if not o.startswith("size=")]
        opts.append(f"size={min(sized) if sized else limits.tmpfs_max}")
        out[path] = ",".join(opts)
    return out


_PORT_KEY = re.compile(r"(\d{1,5})(?:/(tcp|udp|sctp))?")
_PORT_RANGE = re.compile(r"\d{1,5}-\d{1,5}(?:/(tcp|udp|sctp))?")
NO_PORT_RANGES = "port ranges are not allowed; publish each port on its own (-p 127.0.0.1:HOSTPORT:PORT)"


def published_ports(port_bindings: Any) -> int:
    """How many host ports a ``PortBindings`` map publishes: one ``docker-proxy`` process each
    (an empty HostPort is a port the engine picks, still one process)."""
    if not isinstance(port_bindings, dict):
        return 0
    return sum(len(bindings) for bindings in port_bindings.values() if isinstance(bindings, list))


def check_learner_ports(new: int, existing: int, limits: Limits) -> None:
    """A new container's published ports on top of those the learner's containers already hold."""
    if new and existing + new > limits.ports_per_learner_max:
        raise PolicyDenied(
            f"your containers may publish at most {limits.ports_per_learner_max} ports in all "
            f"({existing} already published); remove a container that publishes some (docker rm -f)")


def _port_number(text: str, what: str) -> int:
    number = int(text)
    if not 0 < number <= 65535:
        raise PolicyDenied(f"invalid {what} {text!r}", status=400)
    return number


def _port_bindings(value: Any, limits: Limits) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PolicyDenied("PortBindings must be an object", status=400)
    # Counted first: `-p 1-2000:1-2000` arrives expanded as 2000 ports, and the limit is the reason.
    total = published_ports(value)
    if total > limits.ports_per_container_max:
        raise PolicyDenied(f"a container may publish at most {limits.ports_per_container_max} ports, not {total}")
    out = {}
    for port, bindings in value.items():
        if _PORT_RANGE.fullmatch(port):
            raise PolicyDenied(NO_PORT_RANGES)
        match = _PORT_KEY.fullmatch(port)
        if not match:
            raise PolicyDenied(f"invalid port {port!r}", status=400)
        _port_number(match.group(1), "port")
        if bindings is not None and not isinstance(bindings, list):
            raise PolicyDenied("PortBindings values must be lists", status=400)
        clean = []
        for binding in bindings or []:
            binding = canonical(binding, {"HostIp": None, "HostPort": None}, "PortBindings[]")
            host_ip = _str(binding.get("HostIp", ""), "HostIp")
            if host_ip not in ("", "127.0.0.1"):
                raise PolicyDenied(f"ports may be published on 127.0.0.1 only, not {host_ip} (use -p 127.0.0.1:PORT:PORT)")
            host_port = _str(binding.get("HostPort", ""), "HostPort")
            if "-" in host_port:
                raise PolicyDenied(NO_PORT_RANGES)
            if host_port and not re.fullmatch(r"\d{1,5}", host_port):
                raise PolicyDenied(f"invalid host port {host_port!r}", status=400)
            if host_port and host_port != "0" and _port_number(host_port, "host port") < 1024:
                raise PolicyDenied(f"host port {host_port} is below 1024; use a port from 1024 up")
            clean.append({"HostIp": "127.0.0.1", "HostPort": host_port})
        out[port] = clean
    return out


def _exposed_ports(value: Any, limits: Limits) -> dict:
    if not isinstance(value, dict):
        raise PolicyDenied("ExposedPorts must be an object", status=400)
    if len(value) > limits.exposed_ports_max:
        raise PolicyDenied(f"a container may expose at most {limits.exposed_ports_max} ports")
    for port in value:
        if _PORT_RANGE.fullmatch(port):
            raise PolicyDenied("port ranges are not allowed in --expose; expose each port on its own")
        match = _PORT_KEY.fullmatch(port)
        if not match:
            raise PolicyDenied(f"invalid port {port!r}", status=400)
        _port_number(match.group(1), "port")
    return {port: {} for port in value}


SECOND = 1_000_000_000  # the engine's durations are nanoseconds
HEALTH_FIELDS = {"Test": None, "Interval": None, "Timeout": None, "StartPeriod": None, "StartInterval": None,
                 "Retries": None}


def _health_bounds(limits: Limits) -> dict[str, tuple[str, int, int]]:
    """Each healthcheck duration: (flag, least, most) in nanoseconds."""
    low = round(limits.health_interval_min * SECOND)
    high = round(limits.health_interval_max * SECOND)
    return {
        "Interval": ("--health-interval", low, high),
        "Timeout": ("--health-timeout", low, round(limits.health_timeout_max * SECOND)),
        "StartPeriod": ("--health-start-period", low, high),
        "StartInterval": ("--health-start-interval", low, high),
    }


def _seconds(ns: int) -> str:
    return f"{ns / SECOND:g}s"


def _healthcheck(value: Any, limits: Limits) -> dict:
    """A healthcheck's probes are execs the engine runs on the host's time: at most one a second.
    Zero means "the image's value or the engine's default" and stays (see bound_inherited_healthcheck)."""
    check = canonical(value, HEALTH_FIELDS, "Healthcheck")
    if "Test" in check:
        check["Test"] = _str_list(check["Test"], "Healthcheck.Test")
    for field, (flag, low, high) in _health_bounds(limits).items():
        if field in check:
            ns = _int(check[field], f"Healthcheck.{field}")
            if ns != 0 and not low <= ns <= high:
                raise PolicyDenied(f"{flag} must be between {_seconds(low)} and {_seconds(high)}")
    if "Retries" in check:
        retries = _int(check["Retries"], "Healthcheck.Retries")
        if not 0 <= retries <= limits.health_retries_max:
            raise PolicyDenied(f"--health-retries must be between 0 and {limits.health_retries_max}")
    return check


def bound_inherited_healthcheck(body: dict, image_healthcheck: Any, limits: Limits = Limits()) -> None:
    """Clamp what a container inherits from its image's HEALTHCHECK (the classic builder takes
    ``--interval=1ms``): the engine uses the image's value wherever the create body has zero, so
    the body gets the bounded value instead. The learner's own values were checked by ``_healthcheck``."""
    if not isinstance(image_healthcheck, dict):
        return
    own = body.get("Healthcheck") or {}
    test = own.get("Test") or image_healthcheck.get("Test") or []
    if not test or test[0] == "NONE":
        return
    clamped = dict(own)
    for field, (_flag, low, high) in _health_bounds(limits).items():
        inherited = image_healthcheck.get(field)
        if own.get(field) or isinstance(inherited, bool) or not isinstance(inherited, int) or inherited == 0:
            continue
        if not low <= inherited <= high:
            clamped[field] = min(max(inherited, low), high)
    retries = image_healthcheck.get("Retries")
    if not own.get("Retries") and isinstance(retries, int) and retries > limits.health_retries_max:
        clamped["Retries"] = limits.health_retries_max
    if clamped != own:
        body["Healthcheck"] = clamped


def _bounded_list(value: Any, where: str, most: int) -> list[str]:
    items = _str_list(value, where)
    if len(items) > most:
        raise PolicyDenied(f"{where} may hold at most {most} entries")
    return items


def _console_size(value: Any, limits: Limits) -> list[int]:
    if not isinstance(value, list) or len(value) != 2:
        raise PolicyDenied("ConsoleSize must be [height, width]", status=400)
    size = [_int(v, "ConsoleSize") for v in value]
    if not all(0 <= v <= limits.console_max for v in size):
        raise PolicyDenied(f"the console size may be at most {limits.console_max} rows and columns", status=400)
    return size


def _stop_timeout(value: Any, limits: Limits) -> int:
    seconds = _int(value, "StopTimeout")
    if not 0 <= seconds <= limits.stop_timeout_max:
        raise PolicyDenied(f"--stop-timeout must be between 0 and {limits.stop_timeout_max} seconds")
    return seconds


def _ulimits(value: Any, limits: Limits) -> list[dict]:
    nofile = limits.nofile
    for raw in value or []:
        item = canonical(raw, {"Name": None, "Soft": None, "Hard": None}, "Ulimits[]")
        if item.get("Name") != "nofile":
            raise PolicyDenied(f"--ulimit {item.get('Name')} is not allowed (only nofile, up to {limits.nofile})")
        hard = _int(item.get("Hard", 0), "Ulimits.Hard")
        soft = _int(item.get("Soft", 0), "Ulimits.Soft")
        if not 0 < soft <= hard <= limits.nofile:
            raise PolicyDenied(f"--ulimit nofile must be at most {limits.nofile}")
        nofile = hard
    return [{"Name": "nofile", "Soft": nofile, "Hard": nofile}]


def _restart_policy(value: Any, limits: Limits) -> dict:
    policy = canonical(value, {"Name": None, "MaximumRetryCount": None}, "RestartPolicy")
    name = _str(policy.get("Name", ""), "RestartPolicy.Name")
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise PolicyDenied(f"--restart {name} is not allowed", status=400)
    retries = _int(policy.get("MaximumRetryCount", 0), "MaximumRetryCount")
    if retries < 0 or retries > limits.restart_retries_max:
        raise PolicyDenied(f"--restart on-failure may retry at most {limits.restart_retries_max} times")
    return {"Name": name, "MaximumRetryCount": retries}


def _resources(host: dict, limits: Limits, out: dict) -> None:
    """Memory, CPU and pids: capped, and forced when absent."""
    memory = _int(host.get("Memory", 0), "Memory")
    if memory < 0:
        raise PolicyDenied("--memory must be positive", status=400)
    if memory > limits.memory_max:
        raise PolicyDenied(f"--memory may be at most {limits.memory_max // MiB}m")
    memory = memory or limits.memory_default
    out["Memory"] = memory
    out["MemorySwap"] = memory  # no swap: the memory limit is the real one
    reservation = _int(host.get("MemoryReservation", 0), "MemoryReservation")
    if 0 < reservation <= memory:
        out["MemoryReservation"] = reservation
    if "MemorySwappiness" in host:
        swappiness = _int(host["MemorySwappiness"], "MemorySwappiness")
        if -1 <= swappiness <= 100:
            out["MemorySwappiness"] = swappiness
    nano = _int(host.get("NanoCpus", 0), "NanoCpus")
    if nano < 0:
        raise PolicyDenied("--cpus must be positive", status=400)
    if nano > limits.nano_cpus_max:
        raise PolicyDenied(f"--cpus may be at most {limits.nano_cpus_max / 1e9:g}")
    out["NanoCpus"] = nano or limits.nano_cpus_max
    if host.get("CpuShares"):
        out["CpuShares"] = max(2, min(1024, _int(host["CpuShares"], "CpuShares")))
    if host.get("BlkioWeight"):
        out["BlkioWeight"] = max(10, min(1000, _int(host["BlkioWeight"], "BlkioWeight")))
    cpuset = host.get("CpusetCpus")
    if cpuset:
        if not re.fullmatch(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*", _str(cpuset, "CpusetCpus")):
            raise PolicyDenied(f"invalid --cpuset-cpus {cpuset!r}", status=400)
        out["CpusetCpus"] = cpuset
    pids = _int(host.get("PidsLimit") or 0, "PidsLimit")
    if pids > limits.pids_max:
        raise PolicyDenied(f"--pids-limit may be at most {limits.pids_max}")
    # 0 and -1 mean "unlimited" to the engine: never.
    out["PidsLimit"] = pids if pids > 0 else limits.pids_default


def plan_container_create(learner: Learner, body: Any, limits: Limits = Limits()) -> CreatePlan:
    """Validate and rewrite a ``POST /containers/create`` body (SECURITY.md, container create)."""
    fields: dict[str, str | None] = {name: None for name in ALLOWED_CONFIG_FIELDS}
    fields.update(DENIED_CONFIG_FIELDS)
    config = canonical(body, fields, "Config")
    image = _str(config.get("Image", ""), "Image")
    if not image:
        raise PolicyDenied("an image is required", status=400)
    config["Labels"] = own_labels(learner, config.get("Labels"))
    if "Env" in config:
        config["Env"] = _bounded_list(config["Env"], "Env", limits.env_max)
    if "Healthcheck" in config:
        config["Healthcheck"] = _healthcheck(config["Healthcheck"], limits)
    if "StopTimeout" in config:
        config["StopTimeout"] = _stop_timeout(config["StopTimeout"], limits)

    host_fields: dict[str, str | None] = {name: None for name in ALLOWED_HOST_FIELDS}
    host_fields.update(DENIED_HOST_FIELDS)
    host = canonical(config.pop("HostConfig", None), host_fields, "HostConfig")
    out: dict[str, Any] = {}
    for key in ("ContainerIDFile", "AutoRemove", "ReadonlyRootfs", "Init", "ConsoleSize", "Dns",
                "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd"):
        if key in host:
            out[key] = host[key]
    for key in ("Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd"):
        if key in out:
            out[key] = _bounded_list(out[key], key, limits.list_max)
    if "ConsoleSize" in out:
        out["ConsoleSize"] = _console_size(out["ConsoleSize"], limits)
    mount_count = sum(len(v) if isinstance(v, (list, dict)) else 1
                      for v in (host.get(key) for key in ("Binds", "Mounts", "Tmpfs")) if v)
    if mount_count > limits.mounts_max:
        raise PolicyDenied(f"a container may have at most {limits.mounts_max} volumes, mounts and tmpfs in all")
    for field, (flag, allowed) in NAMESPACE_MODES.items():
        mode = _str(host.get(field, ""), field)
        if mode not in allowed:
            raise PolicyDenied(f"{flag}={mode} is not allowed")
        if mode:
            out[field] = mode
    if host.get("Runtime") not in (None, "", "runc"):
        raise PolicyDenied(f"--runtime {host['Runtime']} is not allowed")
    if host.get("Isolation") not in (None, "", "default"):
        raise PolicyDenied("--isolation is not allowed")
    if "OomScoreAdj" in host:
        score = _int(host["OomScoreAdj"], "OomScoreAdj")
        if not 0 <= score <= 1000:
            raise PolicyDenied("--oom-score-adj must be between 0 and 1000")
        out["OomScoreAdj"] = score
    _resources(host, limits, out)
    out["CapDrop"] = ["ALL"]
    out["SecurityOpt"] = _security_opts(host.get("SecurityOpt"))
    out["Ulimits"] = _ulimits(host.get("Ulimits"), limits)
    shm = _int(host.get("ShmSize", 0), "ShmSize")
    if shm > limits.shm_max:
        raise PolicyDenied(f"--shm-size may be at most {limits.shm_max // MiB}m")
    out["ShmSize"] = shm if shm > 0 else limits.shm_max
    if host.get("Tmpfs"):
        out["Tmpfs"] = _tmpfs(host["Tmpfs"], limits)
    log_config = canonical(host.get("LogConfig"), {"Type": None, "Config": None}, "LogConfig")
    if log_config.get("Type") not in (None, "", "json-file"):
        raise PolicyDenied(f"--log-driver {log_config['Type']} is not allowed")
    out["LogConfig"] = {"Type": "json-file", "Config": {"max-size": limits.log_max_size, "max-file": "1"}}
    out["RestartPolicy"] = _restart_policy(host.get("RestartPolicy"), limits)
    if out["RestartPolicy"]["Name"] not in ("", "no") and out.get("AutoRemove"):
        raise PolicyDenied("--restart and --rm cannot be used together", status=400)
    out["PortBindings"] = _port_bindings(host.get("PortBindings"), limits)
    if "ExposedPorts" in config:  # after the bindings: `-p` sends both, and publishing is the reason
        config["ExposedPorts"] = _exposed_ports(config["ExposedPorts"], limits)
    binds, volumes = _binds(host.get("Binds"))
    if binds:
        out["Binds"] = binds
    mounts, mount_volumes = _mounts(host.get("Mounts"), limits)
    if mounts:
        out["Mounts"] = mounts
    volumes += mount_volumes

    # Networks: the learner's own bridge by default; "none"; or networks they made.
    mode = _str(host.get("NetworkMode", ""), "NetworkMode")
    if mode == "host":
        raise PolicyDenied("--network=host is not allowed")
    if mode.startswith("container:"):
        raise PolicyDenied("--network=container:... is not allowed")
    networking = canonical(config.pop("NetworkingConfig", None), {"EndpointsConfig": None}, "NetworkingConfig")
    endpoints = networking.get("EndpointsConfig") or {}
    if not isinstance(endpoints, dict):
        raise PolicyDenied("EndpointsConfig must be an object", status=400)
    networks: list[str] = []
    uses_own = mode in ("", "default", "bridge")
    if uses_own:
        mode = learner.network
    elif mode != "none":
        networks.append(check_name(mode, "network"))
    clean_endpoints = {}
    for net, settings in endpoints.items():
        endpoint = canonical(settings, {
            "Aliases": None, "NetworkID": None, "EndpointID": None, "IPAMConfig": "--ip is not allowed",
            "Links": "--link is not allowed", "DriverOpts": "network driver options are not allowed",
            "MacAddress": "--mac-address is not allowed"}, "EndpointsConfig")
        target = mode if net in ("", "default", "bridge", host.get("NetworkMode", "")) else net
        if target != mode:
            raise PolicyDenied("connect further networks after creating the container (docker network connect)")
        if endpoint.get("Aliases"):
            clean_endpoints[target] = {"Aliases": _str_list(endpoint["Aliases"], "Aliases")}
    out["NetworkMode"] = mode
    config["HostConfig"] = out
    if clean_endpoints:
        config["NetworkingConfig"] = {"EndpointsConfig": clean_endpoints}
    return CreatePlan(body=config, image=image, networks=networks, volumes=sorted(set(volumes)),
                      uses_own_network=uses_own)


def plan_container_update(body: Any, limits: Limits = Limits()) -> dict:
    """Validate ``POST /containers/{id}/update``: limits stay within the caps."""
    host_fields: dict[str, str | None] = {
        "Memory": None, "MemorySwap": None, "MemoryReservation": None, "NanoCpus": None, "CpuShares": None,
        "PidsLimit": None, "RestartPolicy": None, "CpusetCpus": None, "BlkioWeight": None}
    host_fields.update({k: v for k, v in DENIED_HOST_FIELDS.items() if k not in host_fields})
    update = canonical(body, host_fields, "update")
    out: dict[str, Any] = {}
    if "RestartPolicy" in update:
        out["RestartPolicy"] = _restart_policy(update["RestartPolicy"], limits)
    if any(k in update for k in ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "PidsLimit",
                                 "CpuShares", "CpusetCpus", "BlkioWeight")):
        resources: dict[str, Any] = {}
        _resources(update, limits, resources)
        for key in ("Memory", "MemorySwap", "NanoCpus", "PidsLimit"):
            if key not in update and not (key == "MemorySwap" and "Memory" in update):
                resources.pop(key, None)
        out.update(resources)
    return out


def plan_exec_create(body: Any) -> dict:
    fields: dict[str, str | None] = {
        "AttachStdin": None, "AttachStdout": None, "AttachStderr": None, "Detach": None, "DetachKeys": None,
        "Tty": None, "Env": None, "Cmd": None, "User": None, "WorkingDir": None, "ConsoleSize": None,
        "Privileged": "docker exec --privileged is not allowed"}
    out = canonical(body, fields, "exec")
    if not _str_list(out.get("Cmd"), "Cmd"):
        raise PolicyDenied("exec needs a command", status=400)
    return out


def plan_exec_start(body: Any) -> dict:
    return canonical(body, {"Detach": None, "Tty": None, "ConsoleSize": None}, "exec start")


# --------------------------------------------------------------------------------------------
# Networks, volumes, build
# --------------------------------------------------------------------------------------------
LEARNER_NETWORK_OPTIONS = {
    # Published ports default to loopback, and learners' containers get no route out (no NAT).
    "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
    "com.docker.network.bridge.enable_ip_masquerade": "false",
}


def network_create_body(learner: Learner, name: str, labels: Any = None, internal: bool = False) -> dict:
    return {
        "Name": check_name(name, "network"),
        "CheckDuplicate": True,
        "Driver": "bridge",
        "Internal": bool(internal),
        "Options": dict(LEARNER_NETWORK_OPTIONS),
        "Labels": own_labels(learner, labels),
    }


def with_subnet(body: dict, subnet: str) -> dict:
    """The network body with the subnet the gateway chose (learners may not choose one)."""
    return {**body, "IPAM": {"Driver": "default", "Config": [{"Subnet": subnet}]}}


def free_subnet(pool: str, prefix: int, taken: Iterable[str]) -> str:
    """The first subnet of size ``prefix`` in ``pool`` overlapping none of ``taken``."""
    used = []
    for cidr in taken:
        try:
            used.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    for candidate in ipaddress.ip_network(pool).subnets(new_prefix=prefix):
        if not any(candidate.overlaps(network) for network in used if network.version == candidate.version):
            return str(candidate)
    raise PolicyDenied("the classroom has no network addresses left; ask your instructor", status=503)


def plan_network_create(learner: Learner, body: Any) -> dict:
    net = canonical(body, {
        "Name": None, "CheckDuplicate": None, "Driver": None, "Internal": None, "Labels": None,
        "Attachable": "--attachable is not allowed", "Ingress": "--ingress is not allowed",
        "IPAM": None, "EnableIPv6": "--ipv6 is not allowed", "Options": "network driver options (-o) are not allowed",
        "Scope": "--scope is not allowed", "ConfigOnly": "--config-only is not allowed",
        "ConfigFrom": "--config-from is not allowed"}, "network")
    driver = net.get("Driver") or "bridge"
    if driver != "bridge":
        raise PolicyDenied(f"--driver {driver} is not allowed: only bridge networks")
    ipam = canonical(net.get("IPAM"), {"Driver": None, "Config": None, "Options": None}, "IPAM")
    if ipam.get("Driver") not in (None, "", "default") or ipam.get("Config") or ipam.get("Options"):
        raise PolicyDenied("--subnet, --ip-range, --gateway and IPAM options are not allowed")
    return network_create_body(learner, _str(net.get("Name", ""), "Name"), net.get("Labels"), bool(net.get("Internal")))


def plan_volume_create(learner: Learner, body: Any) -> dict:
    vol = canonical(body, {"Name": None, "Driver": None, "Labels": None,
                           "DriverOpts": "volume driver options (-o) are not allowed",
                           "ClusterVolumeSpec": "cluster volumes are not allowed"}, "volume")
    driver = vol.get("Driver") or "local"
    if driver != "local":
        raise PolicyDenied(f"--driver {driver} is not allowed: only local volumes")
    name = _str(vol.get("Name", ""), "Name")
    if not name:
        raise PolicyDenied("name your volume (docker volume create NAME)", status=400)
    return volume_create_body(learner, name, vol.get("Labels"))


def volume_create_body(learner: Learner, name: str, labels: Any = None) -> dict:
    return {"Name": check_name(name, "volume"), "Driver": "local", "DriverOpts": {}, "Labels": own_labels(learner, labels)}


BUILD_ALLOWED = {"t", "dockerfile", "q", "nocache", "rm", "forcerm", "pull", "memory", "memswap", "cpushares",
                 "cpusetcpus", "cpuperiod", "cpuquota", "buildargs", "shmsize", "labels", "networkmode",
                 "target", "platform", "cachefrom", "version", "session", "buildid", "extrahosts"}


def plan_build(learner: Learner, pairs: list[tuple[str, str]], limits: Limits = Limits()) -> tuple[list[tuple[str, str]], list[Reference]]:
    """Rewrite ``POST /build`` parameters: classic builder, no network, limits, own labels.

    Returns the query to forward and the tags the learner asked for (the proxy checks each name)."""
    query = query_dict(pairs)
    for key, value in query.items():
        if key not in BUILD_ALLOWED and value.strip() in ("", "0", "false", "null", "[]", "{}"):
            continue  # the CLI sends every option, mostly empty
        if key not in BUILD_ALLOWED:
            if key == "remote":
                raise PolicyDenied("building from a remote URL is not allowed; build from a folder")
            raise PolicyDenied(f"the build option {key!r} is not allowed")
    if query.get("version", "1") not in ("", "1"):
        raise PolicyDenied("BuildKit is not available through the classroom gateway; run with DOCKER_BUILDKIT=0")
    if query.get("networkmode", "") not in ("", "default", "none"):
        raise PolicyDenied(f"--network={query['networkmode']} is not allowed for builds")
    if query.get("extrahosts"):
        raise PolicyDenied("--add-host is not allowed for builds")
    if query.get("platform"):
        raise PolicyDenied("--platform is not allowed")
    tags = [parse_reference(value) for key, value in pairs if key == "t" and value]
    for tag in tags:
        check_tag_target(learner, tag)
    learner_labels = loads_strict(query.get("labels", "").encode()) if query.get("labels") else {}
    buildargs = loads_strict(query.get("buildargs", "").encode()) if query.get("buildargs") else {}
    _str_map(buildargs, "buildargs")
    memory = int(query.get("memory") or 0)
    memory = min(memory, limits.memory_max) if memory > 0 else limits.memory_max
    out = [("t", str(tag)) for tag in tags]
    out += [
        ("dockerfile", query.get("dockerfile", "Dockerfile")),
        ("q", "1" if query.get("q") in ("1", "true", "True") else "0"),
        ("nocache", "1" if query.get("nocache") in ("1", "true", "True") else "0"),
        ("rm", "1"), ("forcerm", "1"),  # intermediate containers carry no labels: never keep them
        ("pull", "0"),
        ("networkmode", "none"),
        ("memory", str(memory)), ("memswap", str(memory)),
        ("cpuperiod", "100000"), ("cpuquota", str(limits.nano_cpus_max // 10_000)),
        ("shmsize", str(limits.shm_max)),
        ("labels", json.dumps(own_labels(learner, learner_labels, "labels"))),
        ("buildargs", json.dumps(buildargs)),
        ("version", "1"),
    ]
    if query.get("target"):
        out.append(("target", query["target"]))
    return out, tags


# --------------------------------------------------------------------------------------------
# Filters (lists, events, prune)
# --------------------------------------------------------------------------------------------
def owner_filters(learner: Learner, raw: str | None, *, allowed: set[str] | None = None) -> str:
    """The learner's ``filters`` JSON with the owner labels added (filters AND together)."""
    filters = loads_strict(raw.encode()) if raw else {}
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise PolicyDenied("filters must be a JSON object", status=400)
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if allowed is not None and key not in allowed:
            raise PolicyDenied(f"the filter {key!r} is not allowed here", status=400)
        if isinstance(value, dict):
            values = [k for k, v in value.items() if v]
        else:
            values = _str_list(value, f"filter {key}")
        out[key] = {v: True for v in values}
    labels = out.setdefault("label", {})
    for forced in learner.label_filters:
        labels[forced] = True
    return json.dumps(out)
