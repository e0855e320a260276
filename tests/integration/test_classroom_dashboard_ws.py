"""The live dashboard websocket through the real ASGI app (origin check, auth, real session) and
the real channel layer: a learner's check reaches their instructor's dashboard, nobody else's."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext

from classroom import roster
from lessons.catalogue import get_lesson
from lessons.progress import (
    CheckOutcome, aprogress_for, arecord_attempt, progress_for, record_attempt, reveal_hint,
    view_solution,
)
from sandbox import protocol
from tests.factories import LESSON

pytestmark = pytest.mark.django_db(transaction=True)

QUIZ_LESSON = "big-picture"


async def _connected(dashboard, classroom_id, user):
    ws = await dashboard(classroom_id, user)
    connected, _ = await ws.connect()
    assert connected
    assert json.loads(await ws.receive_from(timeout=5)) == {"kind": "hello", "classroom": classroom_id}
    return ws


def _answers(step) -> dict:
    answers = {}
    for number, question in enumerate(step.text.questions):
        answers[f"q{number}"] = question.answer_key if question.is_choice else question.answer_text[0]
    return answers


async def test_a_learners_passing_check_reaches_only_their_instructors_dashboard(
    dashboard, classroom, other_classroom, owner, instructor, other_instructor
):
    await sync_to_async(roster.set_lessons)(classroom, [LESSON, QUIZ_LESSON])
    await sync_to_async(roster.set_lessons)(other_classroom, [LESSON, QUIZ_LESSON])
    mine = await _connected(dashboard, classroom.pk, instructor)
    theirs = await _connected(dashboard, other_classroom.pk, other_instructor)

    # The learner answers a quiz through the real check view (no engine needed for a quiz).
    step = get_lesson(QUIZ_LESSON).steps[0]
    learner = AsyncClient()
    await learner.aforce_login(owner)
    response = await learner.post(f"/lessons/{QUIZ_LESSON}/steps/{step.slug}/check/", _answers(step), HTTP_HX_REQUEST="true")
    assert 'data-outcome="passed"' in response.content.decode()

    events = [json.loads(await mine.receive_from(timeout=5)) for _ in range(3)]
    kinds = [e["kind"] for e in events]
    # First open (progress row made), the attempt, then the row marked passed.
    assert kinds == ["progress", "attempt", "progress"], events
    attempt, passed = events[1], events[2]
    assert attempt | {"at": None, "sent_at": None} == {
        "kind": "attempt", "user": owner.pk, "lesson": QUIZ_LESSON, "step": step.slug, "outcome": "passed",
        "at": None, "feedback": "All answers are right.", "sent_at": None,
    }
    assert passed["passed_at"] and passed["hints_used"] == 0 and passed["solution_viewed"] is False
    assert await theirs.receive_nothing(timeout=0.3)  # another instructor hears nothing of it
    await mine.disconnect()
    await theirs.disconnect()


async def test_failed_attempt_carries_its_feedback_and_hints_and_solutions_arrive(dashboard, classroom, owner, instructor):
    ws = await _connected(dashboard, classroom.pk, instructor)
    lesson = get_lesson(LESSON)
    step = lesson.steps[0]
    progress = await aprogress_for(owner, lesson, step)
    assert json.loads(await ws.receive_from(timeout=5))["kind"] == "progress"
    await arecord_attempt(progress, CheckOutcome(False, "failed", "There is no pid1.txt yet", exit_code=1))
    event = json.loads(await ws.receive_from(timeout=5))
    assert (event["kind"], event["outcome"], event["feedback"]) == ("attempt", "failed", "There is no pid1.txt yet")
    # Each hint revealed and the solution viewed reach the dashboard as they happen.
    await sync_to_async(reveal_hint)(owner, lesson, step)
    event = json.loads(await ws.receive_from(timeout=5))
    assert event["hints_used"] == 1 and event["solution_viewed"] is False
    await sync_to_async(view_solution)(owner, lesson, step)
    event = json.loads(await ws.receive_from(timeout=5))
    assert event["hints_used"] == 1 and event["solution_viewed"] is True
    await ws.disconnect()


async def test_a_lesson_the_classroom_does_not_assign_sends_nothing(dashboard, classroom, owner, instructor):
    ws = await _connected(dashboard, classroom.pk, instructor)
    lesson = get_lesson("images")
    await aprogress_for(owner, lesson, lesson.steps[0])
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


@pytest.mark.parametrize("who", ["anonymous", "owner", "classmate", "other_instructor", "outsider"])
async def test_only_the_classrooms_instructor_may_open_its_dashboard(dashboard, classroom, other_classroom, who, request):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    ws = await dashboard(classroom.pk, user)
    connected, _ = await ws.connect()
    assert connected  # accepted, then closed with a reason
    expected = protocol.CLOSE_NOT_SIGNED_IN if user is None else protocol.CLOSE_NOT_YOURS
    assert (await ws.receive_output(timeout=5)) == {"type": "websocket.close", "code": expected}


@pytest.fixture
def all_threads_queries(monkeypatch):
    """Count SQL statements from every thread (CaptureQueriesContext sees one connection only)."""
    from django.db.backends import utils

    calls: list[str] = []
    real = utils.CursorWrapper._execute_with_wrappers

    def counting(self, sql, *args, **kwargs):
        calls.append(sql)
        return real(self, sql, *args, **kwargs)

    monkeypatch.setattr(utils.CursorWrapper, "_execute_with_wrappers", counting)
    return calls


async def test_fifty_learners_each_check_costs_fixed_queries_and_the_dashboard_none(
    dashboard, classroom, instructor, all_threads_queries
):
    """50 simulated learners pass a check; per check the classroom adds 2 queries (one per saved
    row) whatever the class size, and relaying an event to the dashboard queries nothing."""
    from django.contrib.auth import get_user_model

    lesson = get_lesson(LESSON)
    step = lesson.steps[0]

    @sync_to_async
    def make_learners():
        rows = []
        for i in range(50):
            user = get_user_model().objects.create_user(username=f"sim{i}")
            roster.join(classroom, user, f"Sim {i}")
            rows.append(progress_for(user, lesson, step))
        return rows

    progresses = await make_learners()
    ws = await _connected(dashboard, classroom.pk, instructor)
    latencies = []

    @sync_to_async
    def pass_check(progress):
        with CaptureQueriesContext(connection) as queries:
            record_attempt(progress, CheckOutcome(True, "passed", "ok", exit_code=0))
        return len(queries)

    for progress in progresses:
        started = time.perf_counter()
        # record_attempt itself: INSERT attempt + UPDATE progress; the classroom: 1 lookup per row.
        assert await pass_check(progress) == 4
        before = len(all_threads_queries)
        for kind in ("attempt", "progress"):
            event = json.loads(await ws.receive_from(timeout=5))
            assert (event["kind"], event["user"]) == (kind, progress.user_id)
        latencies.append(time.perf_counter() - started)
        assert all_threads_queries[before:] == []  # the dashboard relays without the database
    assert len(latencies) == 50  # timings are reported by bench/dashboard.py, never asserted
    await ws.disconnect()


async def test_a_dashboard_url_with_an_id_past_the_database_range_is_refused_not_a_crash(dashboard, instructor):
    for path_id in ("9" * 30, "-1", "x"):
        ws = await dashboard(path_id, instructor)
        connected, _ = await ws.connect()
        assert not connected


async def test_an_instructor_holds_a_bounded_number_of_dashboards(dashboard, classroom, instructor, settings):
    settings.DASHBOARDS_PER_USER = 2
    first = await _connected(dashboard, classroom.pk, instructor)
    second = await _connected(dashboard, classroom.pk, instructor)
    third = await dashboard(classroom.pk, instructor)
    await third.connect()
    assert "Too many dashboards" in json.loads(await third.receive_from(timeout=5))["message"]
    assert (await third.receive_output(timeout=5))["code"] == protocol.CLOSE_TOO_MANY_CONSOLES
    await first.disconnect()
    again = await _connected(dashboard, classroom.pk, instructor)  # a closed tab gives its place back
    await again.disconnect()
    await second.disconnect()


async def test_a_learner_who_joins_appears_on_the_open_dashboard_at_once(dashboard, classroom, outsider, instructor):
    ws = await _connected(dashboard, classroom.pk, instructor)
    await sync_to_async(roster.join)(classroom, outsider, "Newcomer")
    assert json.loads(await ws.receive_from(timeout=5))["kind"] == "roster"  # the page re-reads its snapshot
    await ws.disconnect()
