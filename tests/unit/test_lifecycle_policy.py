"""Lifecycle rules without an engine: limits and overrides, what the reaper does when, queue order."""

from __future__ import annotations

import datetime as dt
import types
import uuid

import pytest

from sandbox import lifecycle
from sandbox.lifecycle import Action

T0 = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.timezone.utc)


def policy(**overrides) -> lifecycle.Policy:
    values = dict(ttl_seconds=3600, idle_seconds=600, warn_seconds=60, extend_seconds=900, max_extensions=2)
    values.update(overrides)
    return lifecycle.Policy(**values)


def row(**fields):
    values = dict(id=uuid.uuid4(), owner_id=1, started_at=T0, last_activity_at=T0, expires_at=T0 + dt.timedelta(hours=1),
                  expiry_warned_at=None, idle_warned_at=None, extensions=0, queued_at=None, created_at=T0)
    values.update(fields)
    return types.SimpleNamespace(**values)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_settings_then_lesson_overrides(settings):
    settings.SANDBOX_TTL_SECONDS, settings.SANDBOX_IDLE_SECONDS = 7200, 1800
    settings.SANDBOX_LESSON_LIMITS = {"long-lab": {"ttl": 14400, "max_extensions": 0}}
    assert lifecycle.policy_for("other").ttl_seconds == 7200
    long_lab = lifecycle.policy_for("long-lab")
    assert (long_lab.ttl_seconds, long_lab.idle_seconds, long_lab.can_extend) == (14400, 1800, False)


def _lesson_with(tmp_path, front: str):
    folder = tmp_path / "long-build"
    (folder / "steps").mkdir(parents=True)
    (folder / "lesson.md").write_text("---\ntitle: Long build\nsummary: s\nworkspace: plain\nminutes: 90\n"
                                      f"order: 50\n{front}---\nIntro.\n")
    (folder / "steps" / "01-go.md").write_text("---\ntitle: Go\ncheck: 'true'\nsolution: 'true'\n---\nGo.\n")
    return folder


def test_a_lessons_front_matter_sets_its_limits_and_the_instructor_still_wins(settings, tmp_path):
    from lessons import catalogue

    _lesson_with(tmp_path, "sandbox:\n  ttl: 10800\n  idle: 2700\n")
    settings.LESSON_DIRS = [str(tmp_path)]
    settings.SANDBOX_TTL_SECONDS, settings.SANDBOX_IDLE_SECONDS = 7200, 1800
    catalogue.clear_cache()
    try:
        lesson = lifecycle.policy_for("long-build")
        assert (lesson.ttl_seconds, lesson.idle_seconds) == (10800, 2700)
        settings.SANDBOX_LESSON_LIMITS = {"long-build": {"idle": 600}}
        assert (lifecycle.policy_for("long-build").ttl_seconds, lifecycle.policy_for("long-build").idle_seconds) == (10800, 600)
    finally:
        catalogue.clear_cache()


@pytest.mark.parametrize("front, message", [
    ("sandbox:\n  tll: 5\n", "unknown sandbox limit 'tll'"),
    ("sandbox:\n  idle: -1\n", "must be a whole number >= 0"),
    ("sandbox:\n  ttl: 1h\n", "must be a whole number >= 0"),
    ("sandbox: 3600\n", "'sandbox' must be a mapping"),
])
def test_bad_lesson_limits_are_named_when_lessons_load(tmp_path, front, message):
    from lessons.loader import validate_dirs

    _lesson_with(tmp_path, front)
    problems = validate_dirs([tmp_path])
    assert any(message in str(problem) for problem in problems), problems


@pytest.mark.parametrize("override, message", [({"tll": 5}, "unknown key 'tll'"), ({"idle": -1}, "whole number"),
                                                ({"ttl": "1h"}, "whole number")])
def test_bad_overrides_are_named(settings, override, message):
    settings.SANDBOX_LESSON_LIMITS = {"lab": override}
    with pytest.raises(ValueError, match=message):
        lifecycle.policy_for("lab")


def test_nothing_to_do_while_active_and_in_time():
    assert lifecycle.decide(row(), policy(), at(30)) is Action.NONE


def test_idle_warning_then_idle_stop_and_activity_resets_it():
    p = policy()
    assert lifecycle.decide(row(), p, at(545)) is Action.WARN_IDLE
    assert lifecycle.decide(row(idle_warned_at=at(545)), p, at(550)) is Action.NONE  # warned once
    assert lifecycle.decide(row(idle_warned_at=at(545)), p, at(600)) is Action.IDLE_STOP
    # Typing moves the deadline: the old warning no longer counts, a new one comes in time.
    active = row(idle_warned_at=at(545), last_activity_at=at(580))
    assert lifecycle.decide(active, p, at(600)) is Action.NONE
    assert lifecycle.decide(active, p, at(1125)) is Action.WARN_IDLE


def test_expiry_warning_then_expiry_beats_idleness():
    p = policy(idle_seconds=0)
    assert lifecycle.decide(row(), p, at(3540)) is Action.WARN_EXPIRY
    assert lifecycle.decide(row(expiry_warned_at=at(3540)), p, at(3550)) is Action.NONE
    assert lifecycle.decide(row(expiry_warned_at=at(3540), last_activity_at=at(0)), policy(), at(3600)) is Action.EXPIRE


def test_an_extension_brings_a_new_warning_before_the_new_end():
    extended = row(expires_at=at(3600 + 900), expiry_warned_at=at(3540))
    assert lifecycle.decide(extended, policy(idle_seconds=0), at(3600)) is Action.NONE
    assert lifecycle.decide(extended, policy(idle_seconds=0), at(4440)) is Action.WARN_EXPIRY


def test_seconds_left_is_the_nearer_end():
    assert lifecycle.seconds_left(row(), policy(), at(100)) == 500  # idle ends first
    assert lifecycle.seconds_left(row(last_activity_at=at(3500)), policy(), at(3500)) == 100  # then the TTL
    assert lifecycle.seconds_left(row(expires_at=None), policy(idle_seconds=0), at(0)) is None


def test_extensions_left_and_none_when_extending_is_off():
    assert lifecycle.extensions_left(row(extensions=1), policy()) == 1
    assert lifecycle.extensions_left(row(extensions=2), policy()) == 0
    assert lifecycle.extensions_left(row(), policy(extend_seconds=0)) == 0


def test_queue_first_come_first_served_but_learners_without_a_sandbox_first():
    early_holder = row(owner_id=1, queued_at=at(1))
    first = row(owner_id=2, queued_at=at(2))
    second = row(owner_id=3, queued_at=at(3))
    order = lifecycle.queue_order([second, early_holder, first], running_owner_ids={1})
    assert [r.owner_id for r in order] == [2, 3, 1]
    assert [r.owner_id for r in lifecycle.queue_order([second, early_holder, first], set())] == [1, 2, 3]


def test_files_are_kept_until_the_time_to_live_runs_out():
    assert not lifecycle.files_expired(row(), at(3599))
    assert lifecycle.files_expired(row(), at(3600))


def test_the_session_and_idle_clocks_are_each_shown_on_their_own():
    assert lifecycle.session_seconds_left(row(), at(100)) == 3500
    assert lifecycle.idle_seconds_left(row(), policy(), at(100)) == 500
    # Activity starts the idle clock again; it never moves the session's end.
    busy = row(last_activity_at=at(3000))
    assert lifecycle.idle_seconds_left(busy, policy(), at(3000)) == 600
    assert lifecycle.session_seconds_left(busy, at(3000)) == 600
    assert lifecycle.session_seconds_left(row(expires_at=None), at(0)) is None
    assert lifecycle.idle_seconds_left(row(), policy(idle_seconds=0), at(0)) is None
    assert lifecycle.session_seconds_left(row(), at(99999)) == 0
