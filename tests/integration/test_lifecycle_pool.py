"""The warm pool on the real engine: concurrent starts claim pre-started sandboxes, never one
sandbox for two learners, and the pool refills in the background."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from sandbox import pool, services, tasks
from sandbox.models import Sandbox

from .lifecycle_helpers import cleanup, make_user, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def pooled_ids() -> set[str]:
    return {str(pk) for pk in Sandbox.objects.filter(state=Sandbox.State.POOLED, owner__isnull=True)
            .values_list("pk", flat=True)}


async def test_concurrent_starts_claim_each_pooled_sandbox_once(settings, base_image, docker_client, cleanup):
    settings.SANDBOX_WARM_POOL, settings.SANDBOX_CAPACITY = {"base": 3}, 20
    # The refill behind the claims at full speed (its pace behind a working class:
    # tests/views/test_warm_pool_pacing.py).
    settings.SANDBOX_WARM_POOL_BUSY_SPACING_SECONDS = 0
    assert await pool.refill() == 3
    ready = await sync_to_async(pooled_ids)()
    cleanup.extend(ready)
    users = [await make_user() for _ in range(6)]

    started = await asyncio.gather(*(start(user) for user in users))
    cleanup.extend(started)
    ids = [str(s.id) for s in started]
    assert len(set(ids)) == 6, "a sandbox was handed to two learners"
    assert len(set(ids) & ready) == 3  # three warm claims, three cold starts
    for user, sandbox in zip(users, started):
        row = await Sandbox.objects.aget(pk=sandbox.id)
        assert (row.owner_id, row.state, row.lesson) == (user.pk, Sandbox.State.RUNNING, "what-is-a-container")
        assert row.expires_at is not None
        who = await services.run_script(row, "id -u && hostname", timeout=10)
        assert who.output.split() == ["1000", "sandbox"], who.output
    # One container per sandbox, each running.
    for sandbox_id in ids:
        containers = docker_client.containers.list(all=True, ignore_removed=True, filters={"label": f"tutorial.sandbox={sandbox_id}"})
        assert [c.status for c in containers] == ["running"]

    await tasks.wait_for_background()  # the refill the claims scheduled
    refilled = await sync_to_async(pooled_ids)()
    cleanup.extend(refilled)
    assert len(refilled) == 3 and not refilled & set(ids)

    for sandbox in started:
        await services.stop_sandbox(sandbox)
    assert await pool.drain({}) == 3
    assert await sync_to_async(pooled_ids)() == set()


async def test_the_pool_fills_only_room_the_class_does_not_use(settings, base_image, cleanup):
    settings.SANDBOX_WARM_POOL, settings.SANDBOX_CAPACITY = {"base": 5}, 2
    learner = await start(await make_user())
    cleanup.append(learner)
    assert await pool.refill() == 1  # capacity 2, one learner: room for one pooled sandbox
    cleanup.extend(await sync_to_async(pooled_ids)())
    await services.stop_sandbox(learner)
    assert await pool.drain({}) == 1


async def test_a_dead_pooled_sandbox_is_not_handed_out(settings, base_image, docker_client, cleanup):
    settings.SANDBOX_WARM_POOL, settings.SANDBOX_CAPACITY = {"base": 1}, 5
    assert await pool.refill() == 1
    (dead,) = await sync_to_async(pooled_ids)()
    cleanup.append(dead)
    docker_client.containers.get(f"tutorial-sbx-{dead}").kill()
    settings.SANDBOX_WARM_POOL = {}  # no refill during the test
    sandbox = await start(await make_user())
    cleanup.append(sandbox)
    assert str(sandbox.id) != dead and sandbox.state == Sandbox.State.RUNNING
    assert (await Sandbox.objects.aget(pk=dead)).state == Sandbox.State.GONE
    await services.stop_sandbox(sandbox)
