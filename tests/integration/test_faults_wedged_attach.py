"""A console attach nobody reads wedges its container: the engine keeps it alive and every kill,
remove or inspect of it waits until that attach goes (moby#41827). A crashed console consumer
leaves exactly that behind. Stop must still answer the learner, and the reaper must still apply
everyone else's time to live in the same pass, on the real engine.

The wedge is real: a raw attach on the engine socket, a `yes` flood typed into it, and its output
never read. Deadlines are shortened (``remove_seconds``) so a stuck call costs seconds, not the
production 15. The wedge is held by this test process, as a crashed consumer's is held by
its server process until it ends."""

from __future__ import annotations

import asyncio
import datetime as dt

import docker
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import AsyncClient
from django.utils import timezone

from sandbox import reaper
from sandbox.engine import client as engine_client
from sandbox.backends.base import LABEL_SANDBOX
from sandbox.backends.docker import DockerBackend
from sandbox.models import Sandbox

from .lifecycle_helpers import cleanup, make_user, only, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

STUCK_WORDS = "has not let go"


@pytest.fixture
def short_deadlines(monkeypatch):
    monkeypatch.setattr(DockerBackend, "remove_seconds", 3.0, raising=False)
    monkeypatch.setattr(reaper, "_set_aside", {}, raising=False)


@pytest.fixture
async def wedge():
    """``await wedge(sandbox)``: what a crashed console leaves, an attach whose output nobody
    reads, with the shell flooding it. Closed at the end of the test (the engine then lets go);
    request it after ``cleanup``, so it is closed before cleanup removes the sandboxes."""
    streams = []

    async def make(sandbox) -> engine_client.HijackedStream:
        stream = await engine_client.hijack(settings.DOCKER_HOST, f"/containers/{sandbox.engine_ref}/attach",
                                            {"stream": 1, "stdout": 1, "stderr": 1, "stdin": 1, "logs": 0})
        streams.append(stream)
        await stream.write(b"yes wedged-by-an-unread-attach\r")
        # Wedged once this side has buffered what it will (asyncio stops reading from the socket
        # past twice the reader's limit) and the engine's copy of the output has stopped: the
        # container's log, fed by the same copy, no longer moves.
        last = None
        while True:
            await asyncio.sleep(0.5)
            answer = await engine_client.request(settings.DOCKER_HOST, "GET", f"/containers/{sandbox.engine_ref}/logs",
                                                 {"stdout": 1, "timestamps": 1, "tail": 1})
            if answer.body == last and len(stream.reader._buffer) >= 1 << 20:
                return stream
            last = answer.body

    yield make
    for stream in streams:
        await stream.close()


def containers_of(sandbox) -> list[str]:
    """Names of the sandbox's containers, from the engine's listing (which, unlike an inspect,
    answers for a wedged container)."""
    client = docker.APIClient(base_url=settings.DOCKER_HOST, timeout=30)
    try:
        return [c["Names"][0] for c in client.containers(all=True, filters={"label": f"{LABEL_SANDBOX}={sandbox.id}"})]
    finally:
        client.close()


async def expire(*sandboxes) -> None:
    for sandbox in sandboxes:
        await Sandbox.objects.filter(pk=sandbox.pk).aupdate(expires_at=timezone.now() - dt.timedelta(seconds=1))


async def test_stop_of_a_wedged_sandbox_answers_the_learner(short_deadlines, base_image, cleanup, labelled_leftovers,
                                                            wedge):
    owner = await make_user()
    sandbox = await start(owner)
    cleanup.append(sandbox)
    stream = await wedge(sandbox)

    client = AsyncClient()
    await sync_to_async(client.force_login)(owner)
    response = await client.post(f"/sandboxes/{sandbox.id}/stop/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert STUCK_WORDS in response.content.decode()  # the pane tells the learner why
    assert "Start sandbox again" in response.content.decode()
    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.GONE and STUCK_WORDS in sandbox.failure_reason
    assert containers_of(sandbox)  # set aside, not forgotten

    # The attach goes (its process ended): the next reaper pass removes what was set aside.
    await stream.close()
    report = await reaper.reap_once(only(sandbox))
    assert report.orphans_removed == [str(sandbox.id)] and not report.stuck
    assert labelled_leftovers(sandbox.id) == []


async def test_a_wedged_leftover_does_not_stop_the_pass_from_applying_time_to_live(
        short_deadlines, base_image, cleanup, labelled_leftovers, wedge):
    # As the field saw it: a Stop whose removal timed out left the row stopped and the wedged
    # container behind; from then on every pass failed on it and nobody else's time ran out.
    wedged = await start(await make_user())
    cleanup.append(wedged)
    stream = await wedge(wedged)
    await Sandbox.objects.filter(pk=wedged.pk).aupdate(state=Sandbox.State.STOPPED, stopped_at=timezone.now())
    others = [await start(await make_user()) for _ in range(2)]
    cleanup.extend(others)
    await expire(*others)

    report = await reaper.reap_once(only(wedged, *others))
    assert report.stuck == [str(wedged.id)] and not report.failures
    assert sorted(report.expired) == sorted(str(s.id) for s in others)
    for sandbox in others:
        await sandbox.arefresh_from_db()
        assert sandbox.state == Sandbox.State.STOPPED and sandbox.failure_reason == reaper.TIME_UP
        assert labelled_leftovers(sandbox.id) == []
    await wedged.arefresh_from_db()
    assert wedged.state == Sandbox.State.GONE and STUCK_WORDS in wedged.failure_reason
    assert containers_of(wedged)

    await stream.close()
    report = await reaper.reap_once(only(wedged, *others))
    assert report.orphans_removed == [str(wedged.id)] and not report.stuck
    assert labelled_leftovers(wedged.id) == []


async def test_an_expiring_wedged_sandbox_is_reported_and_the_others_still_expire(
        short_deadlines, base_image, cleanup, labelled_leftovers, wedge):
    wedged, other = await start(await make_user()), await start(await make_user())
    cleanup.extend([wedged, other])
    stream = await wedge(wedged)
    await expire(wedged, other)

    report = await reaper.reap_once(only(wedged, other))
    assert report.stuck == [str(wedged.id)] and report.expired == [str(other.id)], report
    await other.arefresh_from_db()
    assert other.state == Sandbox.State.STOPPED and labelled_leftovers(other.id) == []
    await wedged.arefresh_from_db()
    assert wedged.state == Sandbox.State.GONE
    assert wedged.failure_reason.startswith(reaper.TIME_UP) and STUCK_WORDS in wedged.failure_reason

    await stream.close()
    await reaper.reap_once(only(wedged))
    assert labelled_leftovers(wedged.id) == []
