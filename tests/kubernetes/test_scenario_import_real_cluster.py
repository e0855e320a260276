"""An imported Katacoda Kubernetes scenario works on the real cluster: its editor block (a Pod in
namespace ``demo``, image ``busybox``, no securityContext) is written by the step's setup with the
namespace dropped, the classroom registry's busybox and the securityContext Pod Security
"restricted" demands; the check (the scenario's verify, ``-n demo`` dropped) FAILS, the solution
(its ``answer`` file) runs, and the check PASSES. Under ``CI`` a missing cluster fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from lessons.checks import run_check, run_setup
from lessons.loader import load_dirs
from lessons.scenarios.importer import import_path
from sandbox import services as sandbox_services
from sandbox import tasks
from sandbox.models import Sandbox
from tests.kubernetes.real_cluster import point_settings_at_cluster

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "scenarios"


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(600)
async def test_an_imported_kubernetes_scenario_fails_fresh_then_passes_after_its_solution(settings, docker_client, labelled_leftovers, tmp_path, fresh_sandbox_images):
    point_settings_at_cluster(settings)
    # The scenario's scripts are bash: the toolbox is built fresh from this checkout's recipes.
    await sync_to_async(fresh_sandbox_images)("base", "toolbox")
    from django.contrib.auth import get_user_model

    await sync_to_async(import_path)(FIXTURES / "katacoda-kubernetes", tmp_path / "lessons")
    lessons, problems = await sync_to_async(load_dirs)([tmp_path / "lessons"])
    assert problems == []
    [lesson] = lessons
    assert lesson.workspace == "kubernetes"
    step = lesson.steps[0]
    assert step.check and step.solution
    learner = await sync_to_async(get_user_model().objects.create_user)(username="verify-imported-k8s-scenario")
    sandbox = await sandbox_services.start_sandbox(learner, lesson.slug, lesson.workspace, lesson.image)
    try:
        assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
        await run_setup(sandbox, step)
        dry_run = await sandbox_services.run_script(sandbox, "kubectl apply --dry-run=server -f ~/example/web.yaml -f ~/service.yaml", timeout=60)
        assert dry_run.exit_code == 0, f"the cluster refuses the rewritten manifests: {dry_run.output}"
        before = await run_check(sandbox, step)
        assert before.outcome == "failed" and before.feedback.strip(), before
        solution = await sandbox_services.run_script(sandbox, step.solution, timeout=120)
        assert not solution.timed_out and solution.exit_code == 0, f"the solution failed: {solution}"
        after = await run_check(sandbox, step)
        assert after.passed, after
    finally:
        await sandbox_services.stop_sandbox(sandbox)
        await tasks.wait_for_background()
        assert await sync_to_async(labelled_leftovers)(sandbox.id) == []
