"""manage.py doctor without an engine: broken configurations fail and name their fix.

The same checks against the real engine, Redis and PostgreSQL are in tests/integration/test_doctor_engine.py.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ops import doctor
from tests.fakes import FakeClusterAPI, every_pod_right

MISSING_SOCKET = "unix:///nonexistent/docker.sock"
REPO = Path(__file__).resolve().parents[2]


def test_engine_check_names_the_missing_socket_and_the_fix(settings):
    settings.DOCKER_HOST = MISSING_SOCKET
    finding = doctor.check_engine()
    assert not finding.ok
    assert "/nonexistent/docker.sock" in finding.message
    assert "scripts/start-dockerd.sh" in finding.fix and "DOCKER_HOST" in finding.fix


def test_engine_check_names_a_refused_tcp_engine(settings, unused_tcp_port):
    settings.DOCKER_HOST = f"tcp://127.0.0.1:{unused_tcp_port}"
    finding = doctor.check_engine()
    assert not finding.ok
    assert f"127.0.0.1:{unused_tcp_port}" in finding.message
    assert "Start the engine" in finding.fix


@pytest.mark.parametrize("check", [doctor.check_cgroup_limits, doctor.check_images])
def test_engine_dependent_checks_fail_with_the_engine_fix_when_it_is_missing(settings, check):
    settings.DOCKER_HOST = MISSING_SOCKET
    finding = check()
    assert not finding.ok
    assert "scripts/start-dockerd.sh" in finding.fix


def test_command_exits_non_zero_and_prints_the_fix_when_the_engine_is_missing():
    env = {**os.environ, "DOCKER_HOST": MISSING_SOCKET}
    result = subprocess.run(
        [sys.executable, "manage.py", "doctor", "--only", "engine"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL Docker engine" in result.stdout
    assert "fix: Start the engine" in result.stdout
    assert "required check(s) failed: engine" in result.stderr


def test_command_raises_command_error_naming_every_failed_required_check(settings):
    settings.DOCKER_HOST = MISSING_SOCKET
    with pytest.raises(CommandError, match="2 required check.*engine, cgroups") as caught:
        call_command("doctor", "--only", "engine", "cgroups")
    assert caught.value.returncode == 1


class _FakeRegistry(http.server.BaseHTTPRequestHandler):
    """Answers /v2/ like a Docker distribution registry that wants credentials."""

    def do_GET(self):  # noqa: N802
        self.send_response(401 if self.path == "/v2/" else 404)
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_registry_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_registry_check_accepts_a_registry_that_wants_credentials(settings, fake_registry_url):
    settings.TUTORIAL_REGISTRY_URL = fake_registry_url
    finding = doctor.check_registry()
    assert finding.ok, finding
    assert "registry/2.0" in finding.message


def test_registry_check_refuses_a_web_server_that_is_not_a_registry(settings, live_server):
    settings.TUTORIAL_REGISTRY_URL = live_server.url
    finding = doctor.check_registry()
    assert not finding.ok
    assert "not a Docker registry" in finding.message


def test_missing_registry_is_a_warning_unless_required(settings, unused_tcp_port, capsys):
    settings.TUTORIAL_REGISTRY_URL = f"http://127.0.0.1:{unused_tcp_port}"
    call_command("doctor", "--only", "registry")  # a warning: no error
    out = capsys.readouterr().out
    assert "warn classroom registry" in out and "scripts/start-registry.sh" in out
    with pytest.raises(CommandError, match="registry"):
        call_command("doctor", "--only", "registry", "--require-registry")


def test_channel_layer_round_trip_in_memory_is_ok_but_says_one_process():
    finding = doctor.check_channel_layer()
    assert finding.ok
    assert "one server process" in finding.message


def test_channel_layer_check_fails_with_the_redis_fix_when_redis_is_down(settings, unused_tcp_port):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [f"redis://127.0.0.1:{unused_tcp_port}/0"]}}}
    channel_layers.backends.clear()
    try:
        finding = doctor.check_channel_layer()
    finally:
        channel_layers.backends.clear()
    assert not finding.ok
    assert "RedisChannelLayer" in finding.message
    assert "REDIS_URL" in finding.fix


@pytest.mark.django_db
def test_database_check_is_ok_on_the_migrated_test_database():
    finding = doctor.check_database()
    assert finding.ok, finding
    assert "migrations applied" in finding.message


def test_database_check_fails_with_the_database_url_fix_when_postgres_is_not_there(unused_tcp_port):
    env = {**os.environ, "DATABASE_URL": f"postgres://nobody:x@127.0.0.1:{unused_tcp_port}/nothing"}
    result = subprocess.run(
        [sys.executable, "manage.py", "doctor", "--only", "database"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL database: postgresql database not reachable" in result.stdout
    assert "fix: Check DATABASE_URL" in result.stdout


def test_cluster_check_passes_without_kubernetes_lessons(monkeypatch):
    monkeypatch.setattr(doctor, "kubernetes_lessons", lambda: [])
    assert doctor.check_cluster().ok


def test_cluster_check_fails_with_the_fix_when_kubernetes_lessons_have_no_cluster(monkeypatch, settings, tmp_path):
    monkeypatch.setattr(doctor, "kubernetes_lessons", lambda: ["pods-101"])
    settings.KUBERNETES_LOCAL_CLUSTER = False
    settings.KUBERNETES_KUBECONFIG = str(tmp_path / "no-such-kubeconfig")
    finding = doctor.check_cluster()
    assert not finding.ok
    assert "1 Kubernetes lessons" in finding.message
    assert "TUTORIAL_KUBECONFIG" in finding.fix


def test_cluster_check_says_how_far_the_local_cluster_is(monkeypatch, settings, tmp_path):
    import json
    import os
    import time

    monkeypatch.setattr(doctor, "kubernetes_lessons", lambda: ["pods-101"])
    monkeypatch.setenv("TUTORIAL_CLUSTER_DIR", str(tmp_path))
    settings.KUBERNETES_LOCAL_CLUSTER = True
    finding = doctor.check_cluster()
    assert not finding.ok and "has not been started" in finding.message and "python -m cluster up" in finding.fix
    (tmp_path / "progress.json").write_text(json.dumps(
        {"phase": "building", "message": "building etcd v3.6.5", "updated": time.time(), "pid": os.getpid()}))
    finding = doctor.check_cluster()
    assert not finding.ok and "building etcd" in finding.message and "cluster status" in finding.fix


def test_missing_cluster_is_a_warning_until_a_kubeconfig_is_configured(monkeypatch, settings, tmp_path):
    monkeypatch.setattr(doctor, "kubernetes_lessons", lambda: ["pods-101"])
    settings.KUBERNETES_LOCAL_CLUSTER = False
    settings.KUBERNETES_KUBECONFIG = ""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    call_command("doctor", "--only", "cluster")  # warning only: the class may not teach Kubernetes
    settings.KUBERNETES_KUBECONFIG = str(tmp_path / "none")
    with pytest.raises(CommandError, match="cluster"):
        call_command("doctor", "--only", "cluster")


def test_disk_check_fails_below_the_threshold_and_names_the_fix(settings):
    settings.DOCTOR_MIN_FREE_BYTES = 1 << 60  # an exabyte: no disk has that free
    finding = doctor.check_disk()
    assert not finding.ok
    assert "low disk" in finding.message and "docker system prune" in finding.fix
    settings.DOCTOR_MIN_FREE_BYTES = 1
    assert doctor.check_disk().ok


def test_static_check_needs_collectstatic_only_with_hashed_names(settings, tmp_path):
    assert doctor.check_static_files().ok  # DEBUG-mode storage: served from the source folders
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
    settings.STATIC_ROOT = tmp_path
    finding = doctor.check_static_files()
    assert not finding.ok and "collectstatic" in finding.fix
    (tmp_path / "staticfiles.json").write_text("{}")
    assert doctor.check_static_files().ok


def test_a_check_that_crashes_is_a_failure_not_a_crash():
    def broken():
        raise RuntimeError("boom")

    finding = doctor.Check("broken", "broken check", broken).run()
    assert not finding.ok
    assert "RuntimeError: boom" in finding.message and finding.fix


def test_unknown_check_names_are_a_clear_error():
    with pytest.raises(ValueError, match="unknown check nope; known: engine"):
        doctor.checks_named(["nope"])


def test_json_output_lists_every_check_run(settings, capsys):
    import json

    settings.DOCKER_HOST = MISSING_SOCKET
    with pytest.raises(CommandError):
        call_command("doctor", "--only", "engine", "static", "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [c["name"] for c in report["checks"]] == ["engine", "static"]
    assert report["checks"][0]["fix"] and report["checks"][1]["ok"] is True


# -- sandboxes and toolboxes as pods -------------------------------------------------------------
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


async def _image_there(image: str):
    return True


async def _image_missing(image: str):
    return False


def test_pod_cluster_check_is_quiet_when_nothing_runs_as_a_pod(settings):
    settings.PLAIN_BACKEND, settings.KUBERNETES_TOOLBOX = "docker", "docker"
    assert doctor.check_pod_cluster().ok


def test_pod_cluster_check_passes_on_a_ready_cluster(settings):
    settings.PLAIN_BACKEND, settings.KUBERNETES_TOOLBOX = "pod", "pod"
    api = FakeClusterAPI({"tutorial-sandboxes": RESTRICTED, "tutorial-tools": RESTRICTED},
                         every_pod_right("tutorial-sandboxes") | every_pod_right("tutorial-tools"))
    finding = doctor.check_pod_cluster(api, _image_there)
    assert finding.ok, finding
    assert "tutorial-tools" in finding.message and "v1.35.4" in finding.message
    assert not api.created  # asking never makes anything


def test_pod_cluster_check_names_each_missing_right_and_the_fix(settings):
    settings.PLAIN_BACKEND, settings.KUBERNETES_TOOLBOX = "docker", "pod"
    rights = every_pod_right("tutorial-tools") - {("tutorial-tools", "create", "pods/exec")}
    finding = doctor.check_pod_cluster(FakeClusterAPI({"tutorial-tools": RESTRICTED}, rights), _image_there)
    assert not finding.ok
    assert "may not, in namespace tutorial-tools (Kubernetes-lesson toolboxes): create pods/exec" in finding.message
    assert "rbac.yaml" in finding.fix


def test_pod_cluster_check_says_how_to_make_a_missing_namespace_and_a_missing_image(settings):
    settings.PLAIN_BACKEND, settings.KUBERNETES_TOOLBOX = "docker", "pod"
    finding = doctor.check_pod_cluster(FakeClusterAPI({}, every_pod_right("tutorial-tools")), _image_missing)
    assert not finding.ok
    assert "namespace tutorial-tools (Kubernetes-lesson toolboxes) does not exist" in finding.message
    assert "tutorial/toolbox:latest" in finding.message
    assert "kubectl apply -k deploy/kubernetes/sandboxes" in finding.fix and "seed_registry" in finding.fix
    # An account that may create namespaces needs none made beforehand.
    api = FakeClusterAPI({}, every_pod_right("tutorial-tools") | {"create namespaces"})
    assert doctor.check_pod_cluster(api, _image_there).ok


def test_pod_cluster_check_refuses_a_namespace_without_pod_security(settings):
    settings.PLAIN_BACKEND, settings.KUBERNETES_TOOLBOX = "pod", "docker"
    finding = doctor.check_pod_cluster(FakeClusterAPI({"tutorial-sandboxes": {}}, every_pod_right("tutorial-sandboxes")),
                                       _image_there)
    assert not finding.ok and "does not enforce Pod Security restricted" in finding.message
    assert "kubectl label namespace tutorial-sandboxes" in finding.fix
