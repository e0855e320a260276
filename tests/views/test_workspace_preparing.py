"""The Kubernetes lesson pages while this machine's local cluster is not ready: what the learner
reads, no Start button beside it, and a pane that reloads itself until the cluster is ready."""

import json
import os
import time

import pytest

from tests.factories import signed_in_client

pytestmark = pytest.mark.django_db

K8S_LESSON = "pods"


@pytest.fixture
def cluster_dir(settings, tmp_path, monkeypatch):
    """The site uses a local cluster whose files are in a temporary folder."""
    monkeypatch.setenv("TUTORIAL_CLUSTER_DIR", str(tmp_path))
    settings.KUBERNETES_LOCAL_CLUSTER = True
    return tmp_path


def write_progress(folder, phase: str, message: str, pid: int) -> None:
    (folder / "progress.json").write_text(json.dumps({"phase": phase, "message": message, "updated": time.time(), "pid": pid}))


def test_a_cluster_being_built_is_news_not_an_error_and_start_waits(cluster_dir, owner):
    write_progress(cluster_dir, "building", "building Kubernetes: 450 packages compiled", os.getpid())
    page = signed_in_client(owner).get(f"/lessons/{K8S_LESSON}/").content.decode()
    assert "getting ready" in page and "updates by itself" in page
    assert "packages compiled" not in page  # operator detail stays with the doctor
    assert 'role="status" data-engine-problem' in page and "data-workspace-preparing" in page
    assert f'hx-get="/sandboxes/lesson/{K8S_LESSON}/pane/"' in page
    assert f"/sandboxes/start/{K8S_LESSON}/" not in page  # no live Start button beside the notice


def test_the_pane_reloads_to_a_start_button_once_the_cluster_is_ready(cluster_dir, owner, monkeypatch):
    write_progress(cluster_dir, "building", "building etcd", os.getpid())
    client = signed_in_client(owner)
    assert "/sandboxes/start/pods/" not in client.get(f"/sandboxes/lesson/{K8S_LESSON}/pane/").content.decode()
    from sandbox import local_cluster

    monkeypatch.setattr(local_cluster, "problem", lambda settings: ("", False))
    from lessons import sandbox_pane

    async def engine_answers(workspace):
        return ""

    monkeypatch.setattr(sandbox_pane, "engine_problem", engine_answers)
    pane = client.get(f"/sandboxes/lesson/{K8S_LESSON}/pane/").content.decode()
    assert "/sandboxes/start/pods/" in pane and "data-workspace-preparing" not in pane


def test_a_build_that_died_is_told_without_operator_detail(cluster_dir, owner):
    write_progress(cluster_dir, "building", "building Kubernetes", 2**22 + 12345)  # no such process
    page = signed_in_client(owner).get(f"/lessons/{K8S_LESSON}/").content.decode()
    assert "not available right now" in page and 'role="alert" data-engine-problem' in page
    assert "python -m cluster" not in page and "/sandboxes/start/pods/" not in page


def test_a_cluster_never_started_is_told_in_chinese_too(cluster_dir, owner):
    page = signed_in_client(owner).get(f"/lessons/{K8S_LESSON}/").content.decode()
    assert "not available right now" in page and "make run" not in page
    client = signed_in_client(owner)
    client.cookies["django_language"] = "zh-hans"
    assert "暂时无法使用" in client.get(f"/lessons/{K8S_LESSON}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()


def test_docker_lessons_do_not_wait_for_the_cluster(cluster_dir, owner):
    write_progress(cluster_dir, "building", "building Kubernetes", os.getpid())
    page = signed_in_client(owner).get("/lessons/what-is-a-container/").content.decode()
    assert "getting ready" not in page


def test_a_configured_kubeconfig_wins_over_the_local_cluster(tmp_path):
    from sandbox.local_cluster import cluster_settings

    assert cluster_settings({"TUTORIAL_KUBECONFIG": "/etc/kind.kubeconfig"}, home=tmp_path) == {}
    assert cluster_settings({"KUBECONFIG": "/etc/k3s.yaml"}, home=tmp_path) == {}
    assert cluster_settings({"TUTORIAL_LOCAL_CLUSTER": "0"}, home=tmp_path) == {}
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("apiVersion: v1\n")
    assert cluster_settings({}, home=tmp_path) == {}


def test_without_a_kubeconfig_the_local_cluster_is_used(tmp_path):
    from sandbox.local_cluster import cluster_settings

    found = cluster_settings({"TUTORIAL_CLUSTER_DIR": str(tmp_path / "c")}, home=tmp_path)
    assert found["KUBERNETES_KUBECONFIG"] == str(tmp_path / "c" / "admin.kubeconfig")
    assert found["KUBERNETES_TOOLBOX_NETWORK"] == "tutorial-cluster"


def test_the_catalogue_marks_the_kubernetes_lessons_while_the_cluster_is_getting_ready(cluster_dir, owner):
    write_progress(cluster_dir, "building", "building etcd", os.getpid())
    page = signed_in_client(owner).get("/").content.decode()
    pods_card = page[page.index('data-lesson="pods"'):]
    pods_card = pods_card[:pods_card.index("</li>")]
    assert "data-workspace-waiting" in pods_card and "Getting ready" in pods_card
    docker_card = page[page.index('data-lesson="what-is-a-container"'):]
    assert "data-workspace-waiting" not in docker_card[:docker_card.index("</li>")]
