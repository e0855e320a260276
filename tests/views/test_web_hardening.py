"""The web side's hardening: no 500 from a malformed id in any URL, CSV cells that a spreadsheet
would run are escaped, a Content-Security-Policy and Permissions-Policy on pages, learner data
not cached, friendly error pages, and bulk removal of a roster's fake learners."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from classroom.models import Membership
from lessons.catalogue import get_lesson
from lessons.models import CheckAttempt, StepProgress
from tests.factories import LESSON, signed_in_client

pytestmark = pytest.mark.django_db
HUGE = "9" * 30


def _patterns(resolver=None, prefix=""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _with_malformed_ids(pattern: str) -> list[str]:
    """Every pattern with a numeric or uuid part, once with a huge number and once with junk."""
    if not re.search(r"<(int|id|uuid):", pattern):
        return []
    out = []
    for bad_int, bad_uuid in ((HUGE, "not-a-uuid"), ("-1", "00000000-0000-0000-0000-00000000000g")):
        path = re.sub(r"<(?:int|id):\w+>", bad_int, pattern)
        path = re.sub(r"<uuid:\w+>", bad_uuid, path)
        path = re.sub(r"<\w+:\w+>", "x", path)
        out.append("/" + path.lstrip("^").rstrip("$"))
    return out


def test_no_url_answers_500_for_a_malformed_id(instructor, classroom):
    paths = [p for pattern in _patterns() for p in _with_malformed_ids(pattern)]
    assert any("/classrooms/" in p for p in paths) and any("/sandboxes/" in p for p in paths)
    client = signed_in_client(instructor)
    client.raise_request_exception = False
    statuses = {path: (client.get(path).status_code, client.post(path).status_code) for path in paths}
    assert {path: s for path, s in statuses.items() if 500 in s} == {}
    assert client.get(f"/classrooms/{HUGE}/mine/").status_code == 404


def test_csv_cells_a_spreadsheet_would_run_are_escaped(instructor, classroom, owner):
    Membership.objects.filter(user=owner).update(display_name="=HYPERLINK(1)")
    progress = StepProgress.objects.create(user=owner, lesson=LESSON, step=get_lesson(LESSON).steps[0].slug)
    CheckAttempt.objects.create(progress=progress, outcome="failed", feedback="ok; =cmd|' /C calc'!A0;+1; @x;\t-2")
    response = signed_in_client(instructor).get(f"/classrooms/{classroom.pk}/export.csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    owner_row = next(r for r in rows if r[1] == "owner")
    assert owner_row[0] == "'=HYPERLINK(1)"
    for piece in owner_row[-1].split(";"):
        assert piece.lstrip(" ")[:1] not in ("=", "+", "-", "@", "\t", "\r"), owner_row[-1]
    assert "no-store" in response["Cache-Control"]


def test_learner_data_is_never_cached(instructor, classroom):
    client = signed_in_client(instructor)
    for path in ("snapshot.json", "activity.json", "export.csv"):
        assert "no-store" in client.get(f"/classrooms/{classroom.pk}/{path}")["Cache-Control"], path


def test_pages_carry_a_csp_that_allows_what_they_use_and_a_permissions_policy(owner):
    response = signed_in_client(owner).get(f"/lessons/{LESSON}/")
    csp = response["Content-Security-Policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    assert directives["script-src"].startswith("'self'") and "unsafe-inline" not in directives["script-src"]
    assert "'self'" in directives["connect-src"]  # the console's websocket to this site
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    page = response.content.decode()
    for src in re.findall(r'<script[^>]+src="([^"]+)"', page):
        # xterm.js, htmx, the site's scripts and its translation catalogue: all from this site ('self').
        assert src.startswith("/") and not src.startswith("//"), src
    assert "camera=()" in response["Permissions-Policy"]


def test_a_404_is_friendly_and_says_nothing_about_the_server(settings):
    settings.DEBUG = False
    response = signed_in_client().get("/no/such/page/")
    body = response.content.decode()
    assert response.status_code == 404 and "Page not found" in body
    assert "urlpatterns" not in body and "Traceback" not in body and "tutorial.urls" not in body


def test_instructor_removes_ticked_learners_at_once(instructor, classroom, other_classroom, owner):
    bots = [Membership.objects.create(classroom=classroom, user=_user(f"bot{n}"), display_name=f"bot {n}") for n in range(5)]
    outsider_membership = other_classroom.memberships.get()
    client = signed_in_client(instructor)
    page = client.get(f"/classrooms/{classroom.pk}/").content.decode()
    assert 'form="bulk-remove"' in page and f'/classrooms/{classroom.pk}/members/remove/' in page
    ids = [str(m.pk) for m in bots] + [str(outsider_membership.pk), "junk", HUGE]
    response = client.post(f"/classrooms/{classroom.pk}/members/remove/", {"members": ids})
    assert response.status_code == 302
    assert not Membership.objects.filter(display_name__startswith="bot").exists()
    assert Membership.objects.filter(classroom=classroom, user=owner).exists()
    assert Membership.objects.filter(pk=outsider_membership.pk).exists()  # another classroom's: untouched


@pytest.mark.parametrize("who", ["owner", "other_instructor", "outsider"])
def test_only_the_instructor_can_bulk_remove(classroom, owner, who, request):
    membership = classroom.memberships.get(user=owner)
    response = signed_in_client(request.getfixturevalue(who)).post(
        f"/classrooms/{classroom.pk}/members/remove/", {"members": [str(membership.pk)]})
    assert response.status_code == 404
    assert Membership.objects.filter(pk=membership.pk).exists()


def _user(name):
    from tests.factories import make_user

    return make_user(name)
