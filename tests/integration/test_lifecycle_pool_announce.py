"""A warm claim is announced to post_save listeners (the classroom dashboard) once, with the
claimed row's owner, lesson and running state, although the claim does not save the row again."""

from __future__ import annotations

import pytest
from django.db.models.signals import post_save

from sandbox import pool, services
from sandbox.models import Sandbox

from .lifecycle_helpers import cleanup, make_user, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def test_a_warm_claim_is_heard_by_post_save_listeners(settings, base_image, cleanup):
    settings.SANDBOX_WARM_POOL, settings.SANDBOX_CAPACITY = {"base": 1}, 5
    assert await pool.refill() == 1
    settings.SANDBOX_WARM_POOL = {}  # no refill during the test
    heard = []

    def listener(sender, instance, update_fields=None, **kwargs):
        heard.append((instance.pk, instance.owner_id, instance.lesson, instance.state, update_fields))

    post_save.connect(listener, sender=Sandbox, dispatch_uid="test-warm-claim")
    try:
        learner = await make_user()
        sandbox = await start(learner)
    finally:
        post_save.disconnect(sender=Sandbox, dispatch_uid="test-warm-claim")
    cleanup.append(sandbox)
    assert sandbox.engine_ref, "a warm claim returns the row with its container"
    assert heard == [(sandbox.pk, learner.pk, "what-is-a-container", Sandbox.State.RUNNING, frozenset({"state"}))]
    await services.stop_sandbox(sandbox)
