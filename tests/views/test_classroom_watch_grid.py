"""The watch grid: an instructor sees a page of small read-only terminals, one per learner's live
sandbox, never more tiles than the consoles one user may hold; nobody else can open it."""

from __future__ import annotations

import pytest

from sandbox.models import Sandbox
from tests.factories import LESSON
from tests.factories import signed_in_client

pytestmark = pytest.mark.django_db


def _sandbox(user, state="running", lesson=LESSON):
    return Sandbox.objects.create(owner=user, lesson=lesson, workspace="plain", image="x", state=state)


def _tiles(html: str) -> int:
    return html.count("data-watch-tile=")


def test_the_grid_shows_each_learners_live_sandbox_by_display_name(classroom, instructor, owner, classmate, outsider):
    olive, cleo = _sandbox(owner), _sandbox(classmate, state="starting")
    _sandbox(owner, state="stopped")
    stranger = _sandbox(outsider)  # not in this class
    html = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/grid/").content.decode()
    assert _tiles(html) == 2
    # Sorted by name: Cleo before Olive; each tile opens that learner's console read-only.
    assert html.index("Cleo Classmate") < html.index("Olive Owner")
    for sandbox in (olive, cleo):
        assert f'data-tile-console-url="/ws/sandboxes/{sandbox.id}/console/"' in html
        assert f"/classrooms/{classroom.pk}/sandboxes/{sandbox.id}/watch/" in html
    assert str(stranger.id) not in html


def test_the_grid_pages_within_the_console_limit(classroom, instructor, owner, settings):
    from classroom.roster import join
    from tests.factories import make_user

    settings.WATCH_GRID_TILES = 12
    settings.CONSOLES_PER_USER = 3
    for i in range(7):
        learner = make_user(f"learner-{i}")
        join(classroom, learner, f"Learner {i}")
        _sandbox(learner)
    client = signed_in_client(instructor)
    pages = [client.get(f"/classrooms/{classroom.pk}/grid/?page={n}").content.decode() for n in (1, 2, 3)]
    assert [_tiles(page) for page in pages] == [3, 3, 1]
    assert "Sandboxes 7–7 of 7" in pages[2]
    # A page past the end shows the last one; a bad number the first.
    assert _tiles(client.get(f"/classrooms/{classroom.pk}/grid/?page=99").content.decode()) == 1
    assert _tiles(client.get(f"/classrooms/{classroom.pk}/grid/?page=x").content.decode()) == 3


def test_with_no_live_sandbox_the_grid_says_so(classroom, instructor):
    html = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/grid/").content.decode()
    assert _tiles(html) == 0 and "No learner has a running sandbox yet" in html


@pytest.mark.parametrize("who", ["owner", "classmate", "outsider", "other_instructor"])
def test_only_the_classrooms_instructor_opens_the_grid(classroom, request, who):
    _sandbox(request.getfixturevalue("owner"))
    response = signed_in_client(request.getfixturevalue(who)).get(f"/classrooms/{classroom.pk}/grid/")
    assert response.status_code == 404


def test_an_ended_class_has_no_grid(classroom, instructor, owner):
    from django.utils import timezone

    _sandbox(owner)
    classroom.ended_at = timezone.now()
    classroom.save(update_fields=["ended_at"])
    assert signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/grid/").status_code == 404


def test_the_dashboard_links_to_the_grid(classroom, instructor):
    html = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/").content.decode()
    assert f'href="/classrooms/{classroom.pk}/grid/"' in html


def test_the_grid_is_in_chinese_for_a_chinese_reader(classroom, instructor, owner):
    _sandbox(owner)
    client = signed_in_client(instructor)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    html = client.get(f"/classrooms/{classroom.pk}/grid/").content.decode()
    for english in ("Watch the class", "Not connected (off screen)", "Open the terminal of", "Refresh the list"):
        assert english not in html
