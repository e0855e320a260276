"""Pure builders for engine configurations: no engine calls, unit-tested without Docker.

The hardening in SECURITY.md lives here, in one place, so a test can read it back.
"""

from __future__ import annotations

from .base import LABEL_ROLE, ROLE_CONSOLE, SandboxSpec, sandbox_labels

SANDBOX_USER = "1000:1000"
SANDBOX_HOME = "/home/learner"
# Where a docker-workspace sandbox finds its gateway socket: a bind-mounted *directory*, so a
# gateway restart that recreates the socket file does not strand the sandbox.
GATEWAY_MOUNT = "/run/tutorial-gateway"
GATEWAY_SOCKET_NAME = "docker.sock"

# Capabilities a lesson may ask for, and nothing else. Everything starts from cap-drop ALL.
ALLOWED_EXTRA_CAPABILITIES = frozenset({"NET_BIND_SERVICE", "CHOWN", "SETUID", "SETGID", "KILL"})


# The console's shell, started again when it ends: `exit` (or Ctrl-D) at the prompt gives a fresh
# login shell, as a terminal tab would, instead of ending the learner's sandbox and its containers.
# Stop ends the sandbox. A shell that dies at once (a broken ~/.profile) is restarted at most once a
# second, so the console is not flooded.
CONSOLE_SHELL_LOOP = (
    "while :; do started=$(date +%s); /bin/sh -l; "
    "printf '\\r\\n[a new shell; Stop ends the sandbox · 新的 shell；点击“停止”结束沙箱]\\r\\n'; "
    "[ $(($(date +%s) - started)) -ge 1 ] || sleep 1; done"
)


def container_name(sandbox_id: str) -> str:
    return f"tutorial-sbx-{sandbox_id}"


def sandbox_container_config(spec: SandboxSpec, *, gateway_dir: str | None = None) -> dict:
    """Keyword arguments for ``docker.client.containers.create`` for this sandbox.

    The console is the container's own TTY: PID 1 is docker's init running a login shell (started
    again when it exits), so every viewer attaches to the same shell and it survives page reloads
    and server restarts.
    """
    limits = spec.limits
    unknown = set(spec.capabilities) - ALLOWED_EXTRA_CAPABILITIES
    if unknown:
        raise ValueError(f"capabilities not allowed for sandboxes: {', '.join(sorted(unknown))}")
    environment = {
        "TERM": "xterm-256color",
        "HOME": SANDBOX_HOME,
        "USER": "learner",
        "ENV": "/etc/profile",
        "TUTORIAL_LESSON": spec.lesson,
    }
    volumes = {}
    if spec.workspace == "docker":
        if not gateway_dir:
            raise ValueError("a docker workspace needs its gateway socket directory")
        volumes[gateway_dir] = {"bind": GATEWAY_MOUNT, "mode": "rw"}
        environment["DOCKER_HOST"] = f"unix://{GATEWAY_MOUNT}/{GATEWAY_SOCKET_NAME}"
    return {
        "image": spec.image,
        "command": ["/bin/sh", "-c", CONSOLE_SHELL_LOOP],
        "name": container_name(spec.sandbox_id),
        "hostname": "sandbox",
        "labels": {**sandbox_labels(spec), LABEL_ROLE: ROLE_CONSOLE},
        "tty": True,
        "stdin_open": True,
        "init": True,
        "user": SANDBOX_USER,
        "working_dir": SANDBOX_HOME,
        "environment": environment,
        "cap_drop": ["ALL"],
        "cap_add": sorted(spec.capabilities) or None,
        "security_opt": ["no-new-privileges:true"],
        "pids_limit": limits.pids,
        "mem_limit": limits.memory_bytes,
        # Swap equal to memory: no swap at all, so the memory limit is the real one.
        "memswap_limit": limits.memory_bytes,
        "nano_cpus": limits.nano_cpus,
        "ulimits": [{"Name": "nofile", "Soft": limits.nofile, "Hard": limits.nofile}],
        "read_only": True,
        "tmpfs": {
            "/tmp": f"rw,nosuid,nodev,size={limits.tmpfs_tmp_bytes}",
            SANDBOX_HOME: f"rw,nosuid,nodev,size={limits.tmpfs_home_bytes},uid=1000,gid=1000,mode=0755",
        },
        "network_mode": "none",
        "log_config": {
            "Type": "json-file",
            "Config": {"max-size": str(limits.log_max_bytes), "max-file": "1"},
        },
        "volumes": volumes or None,
        "detach": True,
    }
