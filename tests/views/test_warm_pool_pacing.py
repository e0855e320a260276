"""Behind a class at work the warm pool refills one sandbox at a time, spaced (creating
containers is CPU on the engine that the class's consoles and Checks wait behind); once the class
is quiet it refills at full speed. On the in-memory backend."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from sandbox import pool, services, tasks
from sandbox.models import Sandbox
from tests.factories import LESSON

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pool_of_three(settings, fake_backend):
    settings.SANDBOX_WARM_POOL, settings.SANDBOX_CAPACITY = {"base": 3}, 20
    settings.SANDBOX_WARM_POOL_BUSY_SPACING_SECONDS = 5.0


async def claim(user) -> None:
    sandbox = await services.start_sandbox(user, LESSON, "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING and sandbox.owner_id == user.pk
    await tasks.wait_for_background()  # the refill the claim scheduled


async def pooled() -> int:
    return await Sandbox.objects.filter(owner__isnull=True, state=Sandbox.State.POOLED).acount()


async def last_made_seconds_ago(seconds: float) -> None:
    await Sandbox.objects.filter(owner__isnull=True).aupdate(
        started_at=timezone.now() - dt.timedelta(seconds=seconds))


async def test_behind_a_working_class_the_pool_refills_one_at_a_time_spaced(pool_of_three, owner, classmate, outsider):
    assert await pool.refill() == 3  # before the class: at once
    await last_made_seconds_ago(600)
    await claim(owner)
    assert await pooled() == 3  # the first claim's refill made one
    await claim(classmate)
    await claim(outsider)
    assert await pooled() == 1  # their refills came within the spacing of that one
    await last_made_seconds_ago(6)
    assert await pool.refill() == 1  # two lacking, one made
    assert await pool.refill() == 0  # and the next waits for the spacing
    assert await pooled() == 2


async def test_a_quiet_class_has_its_pool_refilled_at_once(pool_of_three, owner, classmate):
    assert await pool.refill() == 3
    await claim(owner)
    await claim(classmate)
    assert await pooled() == 1  # within the spacing of the pool's own fill
    quiet = timezone.now() - dt.timedelta(seconds=pool.CLASS_ACTIVE_SECONDS + 1)
    await Sandbox.objects.filter(owner__isnull=False).aupdate(last_activity_at=quiet)
    await pool.drain({})  # empty it: three lacking
    assert await pool.refill() == 3


async def test_a_spacing_of_zero_refills_behind_the_class_at_full_speed(pool_of_three, settings, owner, classmate):
    settings.SANDBOX_WARM_POOL_BUSY_SPACING_SECONDS = 0
    assert await pool.refill() == 3
    await claim(owner)
    await claim(classmate)
    assert await pooled() == 3
