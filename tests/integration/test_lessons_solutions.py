"""Every step of every lesson, verified end to end against the real engine.

For each lesson (discovered from every lesson folder, including ones added later), one real sandbox
is made through ``sandbox.services``; then, step by step in order: run its setup, the check must
FAIL, run the solution in the sandbox, the check must PASS. Quiz steps: the answer key passes and a
wrong answer fails. Finally the sandbox is destroyed and nothing labelled for it may remain.

Plain lessons run a second time with their sandbox as a pod (the pod backend) on that cluster.
Kubernetes-workspace lessons run against the real cluster of ``TUTORIAL_TEST_KUBECONFIG`` (``make
test`` brings up this machine's local cluster); without one they fail under ``CI`` and skip elsewhere.
"""

from __future__ import annotations

import docker
import pytest
from asgiref.sync import sync_to_async
from django.utils import translation

from lessons.catalogue import all_lessons
from lessons.checks import run_check, run_setup
from lessons.lesson import Step
from lessons.quizzes import grade_quiz
from sandbox import services as sandbox_services
from sandbox import tasks
from sandbox.models import Sandbox
from tests.kubernetes.real_cluster import point_settings_at_cluster

LESSONS = all_lessons()


def _correct_answers(step: Step) -> dict[str, str]:
    answers = {}
    for number, question in enumerate(step.text.questions):
        answers[f"q{number}"] = question.answer_key if question.is_choice else question.answer_text[0]
    return answers


def _wrong_answers(step: Step) -> dict[str, str]:
    answers = _correct_answers(step)
    question = step.text.questions[0]
    if question.is_choice:
        answers["q0"] = next(key for key in question.keys if key != question.answer_key)
    else:
        answers["q0"] = "certainly not " + question.answer_text[0]
    return answers


def test_lessons_are_discovered():
    slugs = {lesson.slug for lesson in LESSONS}
    assert {"big-picture", "what-is-a-container"} <= slugs
    assert all(lesson.steps for lesson in LESSONS)


def ensure_lesson_image(client: docker.DockerClient, name: str) -> None:
    from sandbox.images.build import build_image
    from sandbox.images.recipes import RECIPES, image_tag

    try:
        client.images.get(image_tag(name))
    except docker.errors.ImageNotFound:
        if name not in RECIPES:
            pytest.fail(f"image {name!r} is not built and has no recipe")
        build_image(client, name)


# Every plain lesson runs twice: on the Docker engine, and as a pod on the real cluster
# (TUTORIAL_PLAIN_BACKEND=pod); the other workspaces have one backend each.
# Steps a pod cannot offer, and why. Checked to still fail after their solution on pods, so the
# day it works the list is shortened rather than forgotten.
NOT_ON_PODS = {
    "what-is-a-container/06-process-limit.md":
        "Kubernetes has no pids limit per pod that its container can see: the kubelet's podPidsLimit "
        "caps the pod's cgroup, the container's own pids.max says 'max'",
}
RUNS = [(lesson, "docker") for lesson in LESSONS] + [(lesson, "pod") for lesson in LESSONS if lesson.workspace == "plain"]


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(600)
@pytest.mark.parametrize("lesson, plain_backend", RUNS,
                         ids=[lesson.slug + ("-pod" if backend == "pod" else "") for lesson, backend in RUNS])
async def test_every_step_fails_fresh_then_passes_after_its_solution(lesson, plain_backend, docker_client, base_image,
                                                                     labelled_leftovers, settings):
    if lesson.workspace == "kubernetes":
        point_settings_at_cluster(settings)
    if plain_backend == "pod":
        point_settings_at_cluster(settings)
        settings.SANDBOX_BACKENDS = dict(settings.SANDBOX_BACKENDS, plain="sandbox.backends.pod.PodBackend")
        sandbox_services.get_backend.cache_clear()
    from django.contrib.auth import get_user_model

    learner = await sync_to_async(get_user_model().objects.create_user)(username=f"verify-{lesson.slug}"[:150])
    sandbox: Sandbox | None = None
    checked = 0
    try:
        for step in lesson.steps:
            where = f"{lesson.slug}/{step.path.name}"
            if step.is_quiz:
                passed, _results = grade_quiz(step, _correct_answers(step))
                assert passed, f"{where}: the answer key does not pass the quiz"
                passed, _results = grade_quiz(step, _wrong_answers(step))
                assert not passed, f"{where}: a wrong answer passes the quiz"
                for language in step.translations:
                    with translation.override(language):
                        assert grade_quiz(step, _correct_answers(step))[0], f"{where} ({language}): the answer key does not pass"
                        assert not grade_quiz(step, _wrong_answers(step))[0], f"{where} ({language}): a wrong answer passes"
                checked += 1
                continue
            if not step.check:
                continue
            if sandbox is None:
                await sync_to_async(ensure_lesson_image)(docker_client, lesson.image)
                sandbox = await sandbox_services.start_sandbox(learner, lesson.slug, lesson.workspace, lesson.image)
                assert sandbox.state == Sandbox.State.RUNNING, f"{lesson.slug}: sandbox did not start: {sandbox.failure_reason}"
            await run_setup(sandbox, step)
            before = await run_check(sandbox, step)
            assert before.outcome == "failed", f"{where}: the check must fail before the solution; got {before}"
            assert before.feedback.strip(), f"{where}: a failing check must tell the learner why"
            solution = await sandbox_services.run_script(sandbox, step.solution, timeout=max(step.timeout, 60))
            assert not solution.timed_out and solution.exit_code == 0, f"{where}: the solution failed: {solution}"
            after = await run_check(sandbox, step)
            if plain_backend == "pod" and where in NOT_ON_PODS:
                assert not after.passed, f"{where} passes on pods now: remove it from NOT_ON_PODS"
                continue
            assert after.passed, f"{where}: the check must pass after the solution; got {after}"
            checked += 1
    finally:
        if sandbox is not None:
            await sandbox_services.stop_sandbox(sandbox)
            # A stop may start a queue promotion; it must end before the test's database is flushed.
            await tasks.wait_for_background()
            assert await sync_to_async(labelled_leftovers)(sandbox.id) == []
            if plain_backend == "pod":
                assert str(sandbox.id) not in await sandbox_services.get_backend("plain").list_owned()
    assert checked, f"{lesson.slug}: no step was verified"
