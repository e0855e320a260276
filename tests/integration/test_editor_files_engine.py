"""The editor's files on the real engine, in a Docker ``plain`` sandbox and a ``docker`` workspace
(busybox tools, the learner's user): save, an edit in the shell, a conflict, paths that leave the
home (tests/integration/editor_scenario.py)."""

from __future__ import annotations

import pytest

from sandbox import services
from sandbox.models import Sandbox
from tests.integration.editor_scenario import save_edit_in_the_shell_and_conflict
from tests.integration.gateway_helpers import gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


async def test_plain_sandbox(owner, base_image):
    sandbox = await services.start_sandbox(owner, "what-is-a-container", "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    try:
        await save_edit_in_the_shell_and_conflict(services.get_backend("plain"), sandbox.engine_ref)
    finally:
        await services.stop_sandbox(sandbox)


async def test_docker_workspace(gateway_images):  # noqa: F811
    workspace = await start_workspace("editor-test")
    try:
        await save_edit_in_the_shell_and_conflict(workspace.backend, workspace.ref)
    finally:
        await workspace.backend.destroy(workspace.id)
