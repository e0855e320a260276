"""The instructor's numbers mean what they say: a Check pressed with no running sandbox is no
failed attempt, failing feedback groups the same mistake across learners' own values, and "the
class is stuck here" needs enough learners and enough time or failures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone

from classroom import dashboard, export, insights, roster
from lessons.catalogue import get_lesson
from lessons.models import StepProgress
from lessons.progress import CheckOutcome, progress_for, record_attempt
from tests.factories import LESSON

pytestmark = pytest.mark.django_db

STEP = "processes-and-pid-1"
NOT_RUNNING = "Your sandbox is not running: start it, then check again."


def _record(user, outcome, feedback, step_slug=STEP):
    lesson = get_lesson(LESSON)
    progress = progress_for(user, lesson, lesson.step(step_slug))
    passed = outcome == "passed"
    record_attempt(progress, CheckOutcome(passed, outcome, feedback, exit_code=None if outcome == "error" else int(not passed)))
    return progress


def _learner(classroom, n):
    user = get_user_model().objects.create_user(username=f"learner{n}")
    roster.join(classroom, user, f"Learner {n}")
    return user


def _insight(classroom, step_slug=STEP, **kwargs):
    return {i.step: i for i in insights.class_insights(classroom, **kwargs)}[step_slug]


# --- A Check with no running sandbox ------------------------------------------------------------


def test_a_check_with_no_sandbox_is_no_attempt_and_no_failure(classroom, owner):
    _record(owner, "error", NOT_RUNNING)
    _record(owner, "error", NOT_RUNNING)
    cell = dashboard.dashboard_snapshot(classroom)["cells"][f"{owner.pk}:{LESSON}:{STEP}"]
    assert (cell["attempts"], cell["failures"], cell["feedback"]) == (0, 0, "")

    _record(owner, "failed", "There is no ~/pid1.txt yet.")
    _record(owner, "error", NOT_RUNNING)
    cell = dashboard.dashboard_snapshot(classroom)["cells"][f"{owner.pk}:{LESSON}:{STEP}"]
    # The last real check's feedback stays on show, not the sandbox message.
    assert (cell["attempts"], cell["failures"], cell["feedback"]) == (1, 1, "There is no ~/pid1.txt yet.")
    row = [r for r in export.export_csv(classroom).splitlines() if STEP in r][0]
    assert ",1,1," in row


def test_checks_with_no_sandbox_never_make_a_learner_stuck(classroom, owner, classmate):
    third = _learner(classroom, 3)
    for user in (owner, classmate, third):
        for _ in range(5):
            _record(user, "error", NOT_RUNNING)
    insight = _insight(classroom)
    assert insight.common_failure == "" and not insight.most_stuck and insight.struggling == 0


# --- Grouping failing feedback --------------------------------------------------------------------


@pytest.mark.parametrize("one, other", [
    ("Pod web-7d4b9c8f6-x2x9z says 'hello', not version 2.", "Pod web-5c9f8d7b6-qk4mz says 'hi there', not version 2."),
    ("Deployment web asks for 3 replicas, not 2.", "Deployment web asks for 5 replicas, not 2."),
    ("~/hello.txt says: I am root on 3f2a9c1b7d4e", "~/hello.txt says: I am root on 9e1d2c3b4a5f"),
    ("There is no /home/learner/notes/pid1.txt yet.", "There is no /home/learner/pid-one.txt yet."),
    ('The file says "bash", not the command of PID 1.', 'The file says "sleep 1000", not the command of PID 1.'),
    ("Container 4f0c2a1e9b7d exited (code 137)", "Container a9e8d7c6b5a4 exited (code 1)"),
])
def test_the_same_mistake_with_each_learners_own_values_is_one_group(classroom, owner, classmate, one, other):
    _record(owner, "failed", one + "\nfirst learner's details")
    _record(classmate, "failed", other)
    insight = _insight(classroom)
    assert insight.common_failure_count == 2
    assert insight.common_failure_example in (one, other)
    assert insights.normalise_feedback(one) == insights.normalise_feedback(other) == insight.common_failure


def test_normalised_feedback_keeps_the_words_that_tell_mistakes_apart():
    assert insights.normalise_feedback("Pod web-7d4b9c8f6-x2x9z says 'v1', not version 2.") == "Pod web-<id> says '…', not version <n>."
    assert insights.normalise_feedback("site's port 8080 is not published") == "site's port <n> is not published"
    assert insights.normalise_feedback("hello-world did not print hello") == "hello-world did not print hello"
    assert insights.normalise_feedback("\n\n  There is no ~/pid1.txt yet.\nmore") == "There is no ~/… yet."
    assert insights.normalise_feedback("greet was not started") != insights.normalise_feedback("web was not started")


# --- Stuck -------------------------------------------------------------------------------------


def test_two_learners_failing_within_seconds_are_not_a_stuck_class(classroom, owner, classmate):
    for user in (owner, classmate):
        for _ in range(5):
            _record(user, "failed", "nope")
    assert not any(i.most_stuck for i in insights.class_insights(classroom))


def test_three_learners_a_moment_into_a_step_are_not_stuck(classroom, owner, classmate):
    third = _learner(classroom, 3)
    for user in (owner, classmate, third):
        _record(user, "failed", "nope")
    insight = _insight(classroom)
    assert insight.stuck == 3 and insight.struggling == 0 and not insight.most_stuck


def test_a_learner_long_on_a_step_among_three_makes_it_stuck(classroom, owner, classmate):
    third = _learner(classroom, 3)
    for user in (owner, classmate, third):
        _record(user, "failed", "nope")
    StepProgress.objects.filter(user=owner, step=STEP).update(first_opened_at=timezone.now() - timedelta(minutes=11))
    insight = _insight(classroom)
    assert insight.struggling == 1 and insight.most_stuck
    assert not _insight(classroom, "hostname").most_stuck


def test_many_failed_checks_make_a_learner_stuck(classroom, owner, classmate):
    third = _learner(classroom, 3)
    for user in (owner, classmate, third):
        _record(user, "failed", "nope")
    _record(third, "failed", "nope")
    _record(third, "timed_out", "The check took too long.")
    assert _insight(classroom).most_stuck


@override_settings(CLASSROOM_STUCK_MIN_LEARNERS=2, CLASSROOM_STUCK_MINUTES=1, CLASSROOM_STUCK_FAILURES=50)
def test_the_stuck_thresholds_are_settings(classroom, owner, classmate):
    for user in (owner, classmate):
        _record(user, "failed", "nope")
    assert not _insight(classroom).most_stuck
    assert _insight(classroom, now=timezone.now() + timedelta(minutes=2)).most_stuck


def test_after_the_class_ended_the_clock_stops(classroom, owner, classmate):
    third = _learner(classroom, 3)
    for user in (owner, classmate, third):
        _record(user, "failed", "nope")
    classroom.ended_at = timezone.now()
    classroom.save()
    assert not _insight(classroom, now=timezone.now() + timedelta(days=1)).most_stuck


# --- Names ---------------------------------------------------------------------------------------


def test_a_guest_joining_without_a_name_is_asked_for_one_or_keeps_their_earlier_name(classroom, other_classroom, instructor):
    guest = get_user_model().objects.create_user(username="guest-x7k2m9")
    guest.set_unusable_password()
    guest.save()
    with pytest.raises(roster.ClassroomError, match="name"):
        roster.join(classroom, guest, "")
    roster.join(other_classroom, guest, "Gus")
    assert roster.join(classroom, guest, "").display_name == "Gus"
    assert roster.learner_name(classroom, guest) == "Gus"
