"""A site without a Docker engine (the site on a cluster: TUTORIAL_DOCKER_ENGINE=0) keeps its Docker
lessons on the catalogue but says they need a Docker host, and Start refuses them before any
backend is asked; so do Kubernetes lessons while their toolbox is a container on the engine, not
once it is a pod (TUTORIAL_KUBERNETES_TOOLBOX=pod). Shell lessons are offered as usual (their
sandboxes are pods there)."""

import pytest

from sandbox.models import Sandbox
from tests.factories import csrf_post, signed_in_client

pytestmark = pytest.mark.django_db

DOCKER_LESSON = "images"
SHELL_LESSON = "what-is-a-container"


def cards(page: str) -> dict[str, str]:
    """Each catalogue card's HTML by lesson slug."""
    parts = page.split('<li class="lesson-card" data-lesson="')[1:]
    return {part.split('"', 1)[0]: part for part in parts}


def test_the_catalogue_says_docker_lessons_need_a_docker_host(settings, owner):
    settings.DOCKER_ENGINE = False
    settings.KUBERNETES_TOOLBOX = "docker"
    page = cards(signed_in_client(owner).get("/").content.decode())
    assert "data-needs-docker-host" in page[DOCKER_LESSON] and "Needs a Docker host" in page[DOCKER_LESSON]
    assert "data-needs-docker-host" in page["pods"]  # a Kubernetes lesson: its toolbox is a container
    assert "data-needs-docker-host" not in page[SHELL_LESSON]


def test_with_an_engine_nothing_is_said(settings, owner):
    settings.DOCKER_ENGINE = True
    assert "data-needs-docker-host" not in signed_in_client(owner).get("/").content.decode()


def test_the_overview_says_so_too(settings, owner):
    settings.DOCKER_ENGINE = False
    page = signed_in_client(owner).get(f"/lessons/{DOCKER_LESSON}/about/").content.decode()
    assert "data-needs-docker-host" in page


def test_start_refuses_a_docker_lesson_with_the_reason_and_makes_nothing(settings, client_for, owner):
    settings.DOCKER_ENGINE = False
    response = csrf_post(client_for(owner), f"/sandboxes/start/{DOCKER_LESSON}/")
    assert response.status_code == 200
    assert "needs a Docker host" in response.content.decode()
    assert not Sandbox.objects.filter(owner=owner).exists()


def test_with_toolbox_pods_kubernetes_lessons_are_offered_and_docker_ones_still_not(settings, owner):
    settings.DOCKER_ENGINE = False
    settings.KUBERNETES_TOOLBOX = "pod"
    page = cards(signed_in_client(owner).get("/").content.decode())
    assert "data-needs-docker-host" not in page["pods"]
    assert "data-needs-docker-host" in page[DOCKER_LESSON]
    overview = signed_in_client(owner).get("/lessons/pods/about/").content.decode()
    assert "data-needs-docker-host" not in overview
