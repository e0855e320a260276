"""The reaper reconciles the real engine with the database: orphans removed, vanished sandboxes
marked gone, stuck starts failed and cleaned up; the management command does one pass."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.utils import timezone

from sandbox import reaper, services
from sandbox.backends.base import Limits, SandboxSpec
from sandbox.images.recipes import image_tag
from sandbox.models import Sandbox

from .lifecycle_helpers import cleanup, make_user, only, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def orphan_spec() -> SandboxSpec:
    return SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=999, owner_name="nobody", lesson="orphaned",
                       workspace="plain", image=image_tag("base"), limits=Limits())


async def test_engine_objects_without_a_live_row_are_removed(base_image, cleanup, labelled_leftovers):
    spec = orphan_spec()
    cleanup.append(spec.sandbox_id)
    await services.get_backend("plain").create(spec)
    assert labelled_leftovers(spec.sandbox_id)
    report = await reaper.reap_once(only(spec.sandbox_id))
    assert report.orphans_removed == [spec.sandbox_id]
    assert labelled_leftovers(spec.sandbox_id) == []


async def test_a_row_whose_container_vanished_is_marked_gone(base_image, docker_client, cleanup, labelled_leftovers):
    sandbox = await start(await make_user())
    cleanup.append(sandbox)
    docker_client.containers.get(sandbox.engine_ref).remove(force=True)
    report = await reaper.reap_once(only(sandbox))
    assert report.marked_gone == [str(sandbox.id)]
    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.GONE and "disappeared" in sandbox.failure_reason
    # The learner starts it again: a new container under the same id.
    await services.restart_sandbox(sandbox)
    assert sandbox.state == Sandbox.State.RUNNING
    await services.stop_sandbox(sandbox)
    assert labelled_leftovers(sandbox.id) == []


async def test_a_sandbox_stuck_starting_is_failed_and_cleaned_up(settings, base_image, cleanup, labelled_leftovers):
    settings.SANDBOX_START_TIMEOUT_SECONDS = 60
    sandbox = await start(await make_user())
    cleanup.append(sandbox)
    # As a server killed mid-create leaves it: the row says starting, a container exists.
    await Sandbox.objects.filter(pk=sandbox.pk).aupdate(state=Sandbox.State.STARTING,
                                                        started_at=timezone.now() - dt.timedelta(seconds=61))
    report = await reaper.reap_once(only(sandbox))
    assert report.stuck_failed == [str(sandbox.id)]
    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.FAILED and sandbox.failure_reason == reaper.STUCK_STARTING
    assert labelled_leftovers(sandbox.id) == []


def test_the_command_runs_one_pass_and_reports_it(base_image, cleanup, labelled_leftovers, capsys):
    spec = orphan_spec()
    cleanup.append(spec.sandbox_id)
    async_to_sync(services.get_backend("plain").create)(spec)
    call_command("reap_sandboxes", "--sandbox", spec.sandbox_id, "--json")
    assert json.loads(capsys.readouterr().out)["orphans_removed"] == 1
    assert labelled_leftovers(spec.sandbox_id) == []
