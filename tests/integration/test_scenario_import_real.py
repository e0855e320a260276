"""An imported Killercoda scenario works on the real engine, the way every lesson is verified
(tests/integration/test_lessons_solutions.py): one real sandbox; for each step in order its setup
runs, its check FAILS, its solution runs, its check PASSES.

The Docker fixture's first step recreates the scenario's assets and checks a file under the home
(``/root`` rewritten); its second runs busybox's web server with a published port (``-p 8080``
rewritten to 127.0.0.1, ``busybox`` to the classroom registry). Its third has a verify script and
no solution: the imported solution must fail, saying so, and the check stays failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from lessons.checks import run_check, run_setup
from lessons.loader import load_dirs
from lessons.scenarios.importer import import_path
from lessons.scenarios.mapper import FAILING_SOLUTION
from sandbox import services as sandbox_services
from sandbox import tasks
from sandbox.models import Sandbox

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "scenarios"


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(600)
async def test_an_imported_docker_scenario_fails_fresh_then_passes_after_its_solutions(docker_client, labelled_leftovers, tmp_path, fresh_sandbox_images):
    from django.contrib.auth import get_user_model

    await sync_to_async(fresh_sandbox_images)("base", "docker")
    await sync_to_async(import_path)(FIXTURES / "killercoda-docker", tmp_path / "lessons")
    lessons, problems = await sync_to_async(load_dirs)([tmp_path / "lessons"])
    assert problems == []
    [lesson] = lessons
    assert lesson.workspace == "docker"
    learner = await sync_to_async(get_user_model().objects.create_user)(username="verify-imported-scenario")
    sandbox = await sandbox_services.start_sandbox(learner, lesson.slug, lesson.workspace, lesson.image)
    verified = []
    try:
        assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
        for step in lesson.steps:
            if not step.check:
                continue
            where = f"{lesson.slug}/{step.path.name}"
            await run_setup(sandbox, step)
            before = await run_check(sandbox, step)
            assert before.outcome == "failed", f"{where}: the check must fail before the solution; got {before}"
            assert before.feedback.strip(), f"{where}: a failing check must tell the learner why"
            solution = await sandbox_services.run_script(sandbox, step.solution, timeout=max(step.timeout, 60))
            if step.solution == FAILING_SOLUTION:
                assert solution.exit_code != 0 and "no solution in the scenario" in solution.output, solution
                after = await run_check(sandbox, step)
                assert after.outcome == "failed", f"{where}: without a solution the check stays failed; got {after}"
                verified.append(f"{step.slug}: no solution")
                continue
            assert not solution.timed_out and solution.exit_code == 0, f"{where}: the solution failed: {solution}"
            after = await run_check(sandbox, step)
            assert after.passed, f"{where}: the check must pass after the solution; got {after}"
            verified.append(step.slug)
        # The assets the first step's setup recreated are there, executable, under the home (which
        # executes no programs: the report says to run scripts with sh).
        listing = await sandbox_services.run_script(sandbox, 'cat "$HOME/config/app.conf"; test -x "$HOME/opt/app/run.sh" && sh "$HOME/opt/app/run.sh"', timeout=20)
        assert listing.exit_code == 0 and listing.output.count("greeting=hello") == 2, listing
    finally:
        await sandbox_services.stop_sandbox(sandbox)
        await tasks.wait_for_background()
        assert await sync_to_async(labelled_leftovers)(sandbox.id) == []
    assert verified == ["leave-a-note", "run-the-web-server", "where-to-go-from-here: no solution"]
