"""Setup (POST, called by lessons.js when the sandbox is up): runs the step's setup once per
sandbox incarnation, in the requester's own sandbox only."""

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client

from lessons.models import StepProgress
from sandbox import services as sandbox_services

LESSON = """---
title: With setup
summary: x
workspace: plain
minutes: 1
order: 95
---
Intro.
"""
STEP = """---
title: Prepared
setup: |
  echo prepared >> ~/setup-ran.txt
check: |
  test -f ~/done.txt || { echo "no ~/done.txt"; exit 1; }
solution: |
  touch ~/done.txt
---
Text.
"""


@pytest.fixture
def setup_lesson(settings, tmp_path):
    folder = tmp_path / "extra" / "with-setup"
    (folder / "steps").mkdir(parents=True)
    (folder / "lesson.md").write_text(LESSON)
    (folder / "steps" / "01-prepared.md").write_text(STEP)
    settings.LESSON_DIRS = [str(tmp_path / "extra")]
    return "/lessons/with-setup/steps/prepared/setup/"


@pytest.mark.django_db
def test_without_a_sandbox_nothing_runs(setup_lesson, outsider):
    client = Client()
    client.force_login(outsider)
    assert client.post(setup_lesson).status_code == 204
    assert Client().post(setup_lesson).status_code == 302


@pytest.mark.engine
@pytest.mark.django_db(transaction=True)
async def test_setup_runs_once_in_the_owners_sandbox(setup_lesson, owner, classmate, docker_client, base_image, labelled_leftovers):
    sandbox = await sandbox_services.start_sandbox(owner, "with-setup", "plain", "base")
    try:
        client = AsyncClient()
        await client.aforce_login(owner)
        assert (await client.post(setup_lesson)).status_code == 204
        assert (await client.post(setup_lesson)).status_code == 204
        # The step page also ensures setup; it must not run it again.
        assert (await client.get("/lessons/with-setup/")).status_code == 200
        ran = await sandbox_services.run_script(sandbox, "cat ~/setup-ran.txt", timeout=10)
        assert ran.output.split() == ["prepared"]

        other = AsyncClient()
        await other.aforce_login(classmate)
        assert (await other.post(setup_lesson)).status_code == 204
        assert not await StepProgress.objects.filter(user=classmate).exclude(setup_ran_in="").aexists()

        # A reset is a new incarnation: setup runs again there.
        await sandbox_services.reset_sandbox(sandbox)
        assert (await client.post(setup_lesson)).status_code == 204
        ran = await sandbox_services.run_script(sandbox, "cat ~/setup-ran.txt", timeout=10)
        assert ran.output.split() == ["prepared"]
    finally:
        await sandbox_services.stop_sandbox(sandbox)
        assert await sync_to_async(labelled_leftovers)(sandbox.id) == []
