"""The hardened container configuration, read back from the pure builder (no engine)."""

import pytest

from sandbox.backends.base import LABEL_OWNER, LABEL_ROLE, LABEL_SANDBOX, Limits, SandboxSpec
from sandbox.backends.manifests import GATEWAY_MOUNT, sandbox_container_config

SPEC = SandboxSpec(
    sandbox_id="0b7c9e3e-0000-4000-8000-000000000001", owner_id=7, owner_name="ada",
    lesson="what-is-a-container", workspace="plain", image="tutorial/base:latest",
    limits=Limits(memory_bytes=256 * 1024 * 1024, pids=128),
)


def test_every_capability_is_dropped_and_privileges_cannot_be_regained():
    config = sandbox_container_config(SPEC)
    assert config["cap_drop"] == ["ALL"]
    assert config["cap_add"] is None
    assert "no-new-privileges:true" in config["security_opt"]
    assert not any("unconfined" in opt for opt in config["security_opt"])
    assert "privileged" not in config


def test_limits_bound_processes_memory_swap_cpu_and_files():
    config = sandbox_container_config(SPEC)
    assert config["pids_limit"] == 128
    assert config["mem_limit"] == 256 * 1024 * 1024
    assert config["memswap_limit"] == config["mem_limit"]  # no swap beyond the memory limit
    assert config["nano_cpus"] == 1_000_000_000
    assert config["ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]
    assert "oom_kill_disable" not in config


def test_root_is_read_only_with_sized_scratch_space_and_bounded_logs():
    config = sandbox_container_config(SPEC)
    assert config["read_only"] is True
    assert all("size=" in options for options in config["tmpfs"].values())
    assert config["log_config"]["Type"] == "json-file"
    assert config["log_config"]["Config"]["max-size"] == str(512 * 1024)


def test_no_network_and_nothing_from_the_host_for_a_plain_sandbox():
    config = sandbox_container_config(SPEC)
    assert config["network_mode"] == "none"
    assert config["volumes"] is None
    assert "DOCKER_HOST" not in config["environment"]


def test_console_is_an_init_with_a_login_shell_on_a_tty_as_an_unprivileged_user():
    config = sandbox_container_config(SPEC)
    assert config["init"] is True and config["tty"] is True and config["stdin_open"] is True
    # A loop that starts the login shell again when it exits: `exit` does not end the sandbox.
    assert config["command"][:2] == ["/bin/sh", "-c"] and "/bin/sh -l" in config["command"][2]
    assert config["user"] == "1000:1000"


def test_labels_name_the_sandbox_owner_and_role():
    labels = sandbox_container_config(SPEC)["labels"]
    assert labels[LABEL_SANDBOX] == SPEC.sandbox_id
    assert labels[LABEL_OWNER] == "7"
    assert labels[LABEL_ROLE] == "console"


def test_docker_workspace_gets_its_gateway_directory_not_the_engine_socket():
    spec = SandboxSpec(**{**SPEC.__dict__, "workspace": "docker"})
    config = sandbox_container_config(spec, gateway_dir="/srv/data/gateway/abc")
    assert config["volumes"] == {"/srv/data/gateway/abc": {"bind": GATEWAY_MOUNT, "mode": "rw"}}
    assert config["environment"]["DOCKER_HOST"] == f"unix://{GATEWAY_MOUNT}/docker.sock"
    assert not any("docker.sock" in host for host in config["volumes"])


def test_docker_workspace_without_a_gateway_directory_is_refused():
    spec = SandboxSpec(**{**SPEC.__dict__, "workspace": "docker"})
    with pytest.raises(ValueError, match="gateway"):
        sandbox_container_config(spec)


def test_only_capabilities_named_in_the_allowlist_can_be_added():
    allowed = SandboxSpec(**{**SPEC.__dict__, "capabilities": ("NET_BIND_SERVICE",)})
    assert sandbox_container_config(allowed)["cap_add"] == ["NET_BIND_SERVICE"]
    refused = SandboxSpec(**{**SPEC.__dict__, "capabilities": ("SYS_ADMIN",)})
    with pytest.raises(ValueError, match="SYS_ADMIN"):
        sandbox_container_config(refused)
