"""Checks that misbehave, in a real sandbox: one that hangs is killed at its timeout and reported
clearly; one that prints megabytes is cut; neither harms the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from lessons.checks import MAX_FEEDBACK_CHARS, run_check
from lessons.loader import load_dirs
from sandbox import services as sandbox_services
from sandbox import tasks
from sandbox.models import Sandbox

LESSON = """---
title: Misbehaving checks
summary: For tests.
workspace: plain
minutes: 1
order: 1
---
Intro.
"""
HANGS = """---
title: Hangs
check: |
  sleep 600
solution: |
  true
timeout: 2
---
Text.
"""
FLOODS = """---
title: Floods
check: |
  head -c 5000000 /dev/zero | tr '\\0' x
  exit 1
solution: |
  true
---
Text.
"""


def _lesson(tmp_path: Path):
    folder = tmp_path / "lessons" / "misbehaving"
    (folder / "steps").mkdir(parents=True)
    (folder / "lesson.md").write_text(LESSON)
    (folder / "steps" / "01-hangs.md").write_text(HANGS)
    (folder / "steps" / "02-floods.md").write_text(FLOODS)
    lessons, problems = load_dirs([tmp_path / "lessons"])
    assert problems == []
    return lessons[0]


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
async def test_hanging_and_flooding_checks(tmp_path, docker_client, base_image, labelled_leftovers):
    from django.contrib.auth import get_user_model

    lesson = _lesson(tmp_path)
    learner = await sync_to_async(get_user_model().objects.create_user)(username="limits")
    sandbox = await sandbox_services.start_sandbox(learner, lesson.slug, "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    try:
        hangs, floods = lesson.steps
        outcome = await run_check(sandbox, hangs)
        assert outcome.outcome == "timed_out" and not outcome.passed
        assert "did not finish within 2 seconds" in outcome.feedback
        # The hung script was killed inside the sandbox, not left running.
        ps = await sandbox_services.run_script(sandbox, "ps -o args | grep -c '^sleep 600' || true", timeout=10)
        assert ps.output.strip() == "0", ps.output

        outcome = await run_check(sandbox, floods)
        assert outcome.outcome == "failed" and outcome.truncated
        assert 0 < len(outcome.feedback) <= MAX_FEEDBACK_CHARS

        # The sandbox is still healthy afterwards.
        alive = await sandbox_services.run_script(sandbox, "echo alive", timeout=10)
        assert alive.exit_code == 0 and alive.output.strip() == "alive"
    finally:
        await sandbox_services.stop_sandbox(sandbox)
        # The start and the stop leave background work (a pool refill, a queue promotion) that
        # writes to the database: finished here, not during the test database's teardown.
        await tasks.wait_for_background()
        assert await sync_to_async(labelled_leftovers)(sandbox.id) == []
