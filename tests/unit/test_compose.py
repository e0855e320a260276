"""docker-compose.yml, the site's Dockerfile, .dockerignore and .env.example, checked statically.

No registry is reachable here, so `docker compose up` cannot pull postgres, redis or registry:2.
Debian's docker-compose (v1) parses and resolves the file instead; the structure is asserted on
what it resolved. The same settings run against Debian's PostgreSQL and Redis in
tests/integration/test_multiprocess.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
SERVICES = {"site", "gateway", "reaper", "postgres", "redis", "registry"}
SOCKET = "/var/run/docker.sock"
# Only these drive the host's engine; each is as trusted as root on the host (docs/self-hosting.md).
SOCKET_USERS = {"site", "gateway", "reaper"}


def _compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        message = "docker-compose is not installed (apt-get install docker-compose; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _compose_config(env_file: Path) -> subprocess.CompletedProcess:
    # A clean environment: only the env file decides, not the developer's shell.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [_compose_binary(), "-f", str(COMPOSE), "--env-file", str(env_file), "config"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    result = _compose_config(ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_brings_up_the_whole_classroom(resolved):
    assert set(resolved["services"]) == SERVICES


def test_every_service_has_a_health_check(resolved):
    for name, service in resolved["services"].items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_site_is_built_from_the_repository_dockerfile_and_serves_with_daphne(resolved):
    site = resolved["services"]["site"]
    assert Path(site["build"]["context"]) == REPO
    assert (REPO / site["build"].get("dockerfile", "Dockerfile")).is_file()
    command = " ".join(site["command"]) if isinstance(site["command"], list) else site["command"]
    assert "manage.py migrate" in command and "exec daphne" in command and "tutorial.asgi:application" in command
    assert "/healthz" in " ".join(site["healthcheck"]["test"])
    for needed in ("postgres", "redis", "registry"):
        assert site["depends_on"][needed]["condition"] == "service_healthy"


def test_gateway_and_reaper_run_their_commands_from_the_same_image(resolved):
    services = resolved["services"]
    assert services["gateway"]["command"] == ["python", "manage.py", "run_gateway"]
    # The reaper is a long-lived service: one pass and exit would leave limits unapplied.
    assert services["reaper"]["command"] == ["python", "manage.py", "reap_sandboxes", "--loop"]
    from django.core.management import load_command_class

    parser = load_command_class("sandbox", "reap_sandboxes").create_parser("manage.py", "reap_sandboxes")
    assert parser.parse_args(["--loop"]).loop is True
    assert services["gateway"]["image"] == services["reaper"]["image"] == services["site"]["image"]


def test_data_persists_in_named_volumes(resolved):
    assert {"pgdata", "redisdata", "registrydata"} <= set(resolved["volumes"])
    mounts = {name: [v.split(":")[:2] for v in s.get("volumes", [])] for name, s in resolved["services"].items()}
    assert ["pgdata", "/var/lib/postgresql/data"] in mounts["postgres"]
    assert ["registrydata", "/var/lib/registry"] in mounts["registry"]
    assert ["redisdata", "/data"] in mounts["redis"]


def test_app_services_share_the_data_dir_at_the_same_path_as_on_the_host(resolved):
    # The host's engine mounts gateway sockets from this folder into sandboxes by its host path.
    for name in SOCKET_USERS:
        service = resolved["services"][name]
        data_dir = service["environment"]["TUTORIAL_DATA_DIR"]
        assert [data_dir, data_dir] in [v.split(":")[:2] for v in service["volumes"]], name


def test_nothing_is_privileged_or_shares_host_namespaces(resolved):
    for name, service in resolved["services"].items():
        assert not service.get("privileged"), name
        assert not service.get("cap_add"), name
        assert not service.get("devices"), name
        for key in ("network_mode", "pid", "ipc", "userns_mode"):
            assert service.get(key) != "host", f"{name} {key}"
        assert "seccomp:unconfined" not in service.get("security_opt", []), name


def test_the_docker_socket_is_mounted_only_where_the_engine_is_driven(resolved):
    with_socket = {
        name for name, service in resolved["services"].items()
        if any(volume.split(":")[0] == SOCKET for volume in service.get("volumes", []))
    }
    assert with_socket == SOCKET_USERS


def test_published_ports_are_on_loopback_by_default(resolved):
    published = {name: s["ports"] for name, s in resolved["services"].items() if s.get("ports")}
    assert set(published) == {"site", "registry"}  # postgres and redis stay on the compose network
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_app_services_use_postgres_redis_and_production_mode(resolved):
    for name in SOCKET_USERS:
        env = resolved["services"][name]["environment"]
        assert env["DJANGO_DEBUG"] == "0"
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert "127.0.0.1" in env["DJANGO_ALLOWED_HOSTS"].split(",")  # the health check's Host


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = _compose_config(empty)
    assert result.returncode != 0
    assert "set DJANGO_SECRET_KEY in .env" in result.stderr
    empty.write_text("DJANGO_SECRET_KEY=x\n")
    result = _compose_config(empty)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def _documented() -> set[str]:
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.M))


def test_env_example_documents_every_variable_compose_reads():
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))
    assert used - _documented() == set(), "add these to .env.example"


def test_env_example_documents_every_setting_read_from_the_environment():
    settings_py = (REPO / "tutorial" / "settings.py").read_text()
    read = set(re.findall(r"""(?:environ\.get|environ\[|env_bool|env_list|env_int)\(?\s*["']([A-Z][A-Z0-9_]+)["']""", settings_py))
    assert "DATABASE_URL" in read and "DJANGO_SECRET_KEY" in read  # the pattern finds them
    assert read - _documented() == set(), "document these settings in .env.example"


def test_site_dockerfile_collects_static_files_and_serves_with_daphne():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11", dockerfile, flags=re.M)
    assert "pip install -r requirements.txt -c requirements.lock" in dockerfile
    assert "collectstatic --noinput" in dockerfile
    assert "npm ci" in dockerfile  # xterm.js is installed, never committed
    assert re.search(r'^CMD \["daphne", .*"tutorial\.asgi:application"\]', dockerfile, flags=re.M)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "node_modules", "data", ".env"} <= ignored
