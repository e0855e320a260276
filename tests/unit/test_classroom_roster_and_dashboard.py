"""Classroom services without an engine: joining, snapshot, insights, CSV, console access rule."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from classroom.roster import NotFound
from django.utils import timezone

from classroom import consoles, dashboard, export, insights, permissions, roster
from classroom.models import TakeOver
from lessons.catalogue import get_lesson
from lessons.models import CheckAttempt, StepProgress
from lessons.progress import CheckOutcome, progress_for, record_attempt
from sandbox.models import Sandbox
from sandbox.permissions import Access
from tests.factories import LESSON, make_instructor

pytestmark = pytest.mark.django_db


def _fail(user, step_slug, feedback):
    lesson = get_lesson(LESSON)
    step = lesson.step(step_slug)
    progress = progress_for(user, lesson, step)
    record_attempt(progress, CheckOutcome(False, "failed", feedback, exit_code=1))
    return progress


def _pass(user, step_slug, after_seconds=0):
    lesson = get_lesson(LESSON)
    step = lesson.step(step_slug)
    progress = progress_for(user, lesson, step)
    record_attempt(progress, CheckOutcome(True, "passed", "ok", exit_code=0))
    progress.refresh_from_db()
    StepProgress.objects.filter(pk=progress.pk).update(first_opened_at=progress.passed_at - timedelta(seconds=after_seconds))
    return progress


def test_join_code_is_unambiguous_and_found_case_insensitively(classroom):
    assert len(classroom.join_code) == 8
    assert not set(classroom.join_code) & set("01OIL")
    assert roster.classroom_by_code(classroom.join_code.lower()) == classroom
    assert roster.classroom_by_code("") is None


def test_create_refuses_bad_input(instructor):
    with pytest.raises(roster.ClassroomError, match="name"):
        roster.create_classroom(instructor, " ", [LESSON])
    with pytest.raises(roster.ClassroomError, match="No such lesson: nope"):
        roster.create_classroom(instructor, "x", ["nope"])


def test_closed_classroom_refuses_newcomers_but_keeps_members(classroom, owner, outsider):
    classroom.open_for_joining = False
    classroom.save()
    with pytest.raises(roster.ClassroomError, match="closed"):
        roster.join(classroom, outsider, "late")
    assert roster.join(classroom, owner).display_name == "Olive Owner"


def test_instructor_check_uses_the_group(instructor, outsider):
    assert roster.is_instructor(instructor)
    assert not roster.is_instructor(outsider)
    roster.grant_instructor(instructor, revoke=True)
    assert not roster.is_instructor(instructor)


def test_classroom_is_404_for_everyone_but_its_instructor(classroom, instructor, other_instructor, owner, outsider):
    assert roster.classroom_for_instructor(instructor, classroom.pk) == classroom
    for user in (other_instructor, owner, outsider):
        with pytest.raises(NotFound):
            roster.classroom_for_instructor(user, classroom.pk)


def test_snapshot_holds_cells_feedback_and_sandboxes(classroom, owner, classmate):
    _fail(owner, "processes-and-pid-1", "There is no pid1.txt yet\nmore")
    _pass(owner, "processes-and-pid-1")
    _fail(classmate, "processes-and-pid-1", "wrong answer")
    Sandbox.objects.create(owner=owner, lesson=LESSON, workspace="plain", image="x", state="running")
    snap = dashboard.dashboard_snapshot(classroom)
    cell = snap["cells"][f"{owner.pk}:{LESSON}:processes-and-pid-1"]
    assert cell["attempts"] == 2 and cell["failures"] == 1 and cell["passed_at"] and cell["outcome"] == "passed"
    other = snap["cells"][f"{classmate.pk}:{LESSON}:processes-and-pid-1"]
    assert other["passed_at"] is None and other["feedback"] == "wrong answer"
    assert snap["sandboxes"][f"{owner.pk}:{LESSON}"]["state"] == "running"
    assert [m["name"] for m in snap["members"]] == ["Cleo Classmate", "Olive Owner"]


def test_snapshot_excludes_other_classrooms_learners(classroom, other_classroom, outsider):
    _fail(outsider, "processes-and-pid-1", "nope")
    snap = dashboard.dashboard_snapshot(classroom)
    assert all(not key.startswith(f"{outsider.pk}:") for key in snap["cells"])
    assert outsider.pk not in [m["user"] for m in snap["members"]]


def test_snapshot_queries_do_not_grow_with_the_class(classroom, django_assert_num_queries):
    from django.contrib.auth import get_user_model

    def add_learners(n, start):
        for i in range(start, start + n):
            user = get_user_model().objects.create_user(username=f"learner{i}")
            roster.join(classroom, user, f"Learner {i}")
            _fail(user, "processes-and-pid-1", "no")
            _pass(user, "hostname")
            Sandbox.objects.create(owner=user, lesson=LESSON, workspace="plain", image="x", state="running")

    add_learners(3, 0)
    with django_assert_num_queries(5):
        small = dashboard.dashboard_snapshot(classroom)
    add_learners(47, 3)
    with django_assert_num_queries(5):
        big = dashboard.dashboard_snapshot(classroom)
    assert len(big["members"]) == 52 > len(small["members"])
    assert len(big["cells"]) == 100


def test_insights_count_passes_median_and_common_failure(classroom, owner, classmate):
    _fail(owner, "processes-and-pid-1", "There is no /root/pid1.txt yet\nhint")
    _fail(classmate, "processes-and-pid-1", "There is no /root/pid1.txt yet\nother")
    _fail(classmate, "processes-and-pid-1", "That is not PID 1")
    _pass(owner, "processes-and-pid-1", after_seconds=60)
    _pass(classmate, "processes-and-pid-1", after_seconds=120)
    progress_for(owner, get_lesson(LESSON), get_lesson(LESSON).step("hostname"))
    _fail(owner, "hostname", "says x")
    by_step = {i.step: i for i in insights.class_insights(classroom)}
    first = by_step["processes-and-pid-1"]
    assert (first.passed, first.learners, first.median_seconds) == (2, 2, 90.0)
    assert (first.common_failure, first.common_failure_count) == ("There is no /root/pid1.txt yet", 2)
    # One learner a moment into a step, in a class of two: working on it, not a stuck class.
    assert by_step["hostname"].stuck == 1 and not by_step["hostname"].most_stuck
    assert not first.most_stuck


def test_csv_export_has_a_row_per_opened_step_and_defuses_formulas(classroom, owner):
    roster.rename_member(classroom, classroom.memberships.get(user=owner).pk, "=HYPERLINK(1)")
    _fail(owner, "processes-and-pid-1", "-bad")
    rows = list(csv.reader(io.StringIO(export.export_csv(classroom))))
    assert rows[0] == export.CSV_HEADER
    assert rows[1][0] == "'=HYPERLINK(1)" and rows[1][3] == "processes-and-pid-1" and rows[1][7] == "1"
    assert rows[1][-1] == "'-bad"


def test_console_access_rule_for_every_pair(classroom, other_classroom, owner, classmate, instructor, other_instructor, outsider):
    sandbox = Sandbox.objects.create(owner=owner, lesson=LESSON, workspace="plain", image="x", state="running")
    assert permissions.instructor_console_access(instructor, sandbox) is Access.READ_ONLY
    for user in (classmate, other_instructor, outsider):
        assert permissions.instructor_console_access(user, sandbox) is Access.NONE
    TakeOver.objects.create(sandbox=sandbox, instructor=instructor, classroom=classroom)
    assert permissions.instructor_console_access(instructor, sandbox) is Access.FULL
    # A sandbox for a lesson the classroom does not assign stays private.
    private = Sandbox.objects.create(owner=owner, lesson="images", workspace="plain", image="x", state="running")
    assert permissions.instructor_console_access(instructor, private) is Access.NONE


def test_learner_sandbox_is_404_outside_the_classroom(classroom, other_classroom, owner, outsider):
    mine = Sandbox.objects.create(owner=owner, lesson=LESSON, workspace="plain", image="x")
    theirs = Sandbox.objects.create(owner=outsider, lesson=LESSON, workspace="plain", image="x")
    assert consoles.learner_sandbox(classroom, mine.id) == mine
    with pytest.raises(NotFound):
        consoles.learner_sandbox(classroom, theirs.id)


def test_grant_instructor_command(db, capsys):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    get_user_model().objects.create_user(username="teacher")
    call_command("grant_instructor", "teacher")
    assert roster.is_instructor(get_user_model().objects.get(username="teacher"))
    assert "now an instructor" in capsys.readouterr().out
