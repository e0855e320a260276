"""Claiming a warm-pool sandbox on a backend that trusts what the engine showed moments ago
(``seen_running_trust_seconds``, as the pod backend does): a Start hands out a pooled sandbox the
engine showed running without asking it again, and still asks about (and replaces) one it has
not shown running for longer. The in-memory backend stands in for the cluster."""

from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from sandbox import pool, services
from sandbox.backends.base import EngineState
from sandbox.models import Sandbox
from tests.factories import LESSON

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trusting_pool(settings, fake_backend, monkeypatch):
    """One pooled sandbox made by the pool; every status read of the backend is counted."""
    monkeypatch.setattr(fake_backend, "seen_running_trust_seconds", 15.0)
    reads: list[str] = []
    status = fake_backend.status

    async def counted(self, ref):
        reads.append(ref)
        return await status(self, ref)

    monkeypatch.setattr(fake_backend, "status", counted)
    settings.SANDBOX_WARM_POOL = {"base": 1}
    assert async_to_sync(pool.refill)() == 1
    settings.SANDBOX_WARM_POOL = {}  # no refill behind the test's back
    return Sandbox.objects.get(owner__isnull=True, state=Sandbox.State.POOLED), reads


def start(user) -> Sandbox:
    return async_to_sync(services.start_sandbox)(user, LESSON, "plain", "base")


def test_a_sandbox_the_pool_just_made_is_handed_out_without_asking_the_engine(trusting_pool, owner):
    pooled, reads = trusting_pool
    sandbox = start(owner)
    assert sandbox.id == pooled.id and sandbox.state == Sandbox.State.RUNNING
    assert reads == []


def test_one_not_seen_running_lately_is_asked_about_and_a_dead_one_replaced(trusting_pool, owner, fake_backend):
    pooled, reads = trusting_pool
    Sandbox.objects.filter(pk=pooled.pk).update(seen_running_at=timezone.now() - dt.timedelta(minutes=5))
    fake_backend.sandboxes[str(pooled.id)].state = EngineState.EXITED  # died since
    sandbox = start(owner)
    assert reads == [pooled.engine_ref]
    assert sandbox.id != pooled.id and sandbox.state == Sandbox.State.RUNNING
    assert Sandbox.objects.get(pk=pooled.pk).state == Sandbox.State.GONE


def test_a_reaper_listing_renews_what_the_engine_showed(trusting_pool):
    pooled, _reads = trusting_pool
    listed_at = timezone.now() + dt.timedelta(seconds=1)
    async_to_sync(pool.seen_running)([str(pooled.id)], listed_at)
    assert Sandbox.objects.get(pk=pooled.pk).seen_running_at == listed_at


def test_a_backend_that_always_asks_is_asked(settings, fake_backend, owner):
    settings.SANDBOX_WARM_POOL = {"base": 1}
    assert async_to_sync(pool.refill)() == 1
    settings.SANDBOX_WARM_POOL = {}
    (pooled_id,) = Sandbox.objects.filter(owner__isnull=True).values_list("pk", flat=True)
    fake_backend.sandboxes[str(pooled_id)].state = EngineState.EXITED
    sandbox = start(owner)
    assert sandbox.id != pooled_id and sandbox.state == Sandbox.State.RUNNING
