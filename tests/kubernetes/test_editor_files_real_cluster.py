"""The editor's files in a Kubernetes sandbox on a REAL cluster (``TUTORIAL_TEST_KUBECONFIG``;
under ``CI`` a missing cluster fails): the toolbox's ``run`` reads and saves the learner's home
as in a Docker sandbox (tests/integration/editor_scenario.py)."""

from __future__ import annotations

import pytest

from sandbox import services
from sandbox.models import Sandbox
from tests.integration.editor_scenario import save_edit_in_the_shell_and_conflict
from tests.kubernetes.real_cluster import point_settings_at_cluster
from tests.kubernetes.test_credentials_real_cluster import toolbox_image  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


async def test_save_edit_in_the_shell_and_conflict(settings, owner, toolbox_image):  # noqa: F811
    point_settings_at_cluster(settings)
    sandbox = await services.start_sandbox(owner, "pods", "kubernetes", "toolbox")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    try:
        await save_edit_in_the_shell_and_conflict(services.get_backend("kubernetes"), sandbox.engine_ref)
    finally:
        await services.stop_sandbox(sandbox)
