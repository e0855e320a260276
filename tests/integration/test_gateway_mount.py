"""The gateway folder mounted into a docker-workspace sandbox: reachable, never writable."""

import pytest

from tests.integration.gateway_helpers import gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine]


async def test_learner_reaches_the_gateway_socket_but_cannot_write_into_its_folder(gateway_images, labelled_leftovers):
    workspace = await start_workspace()
    try:
        result = await workspace.sh(
            "docker version --format '{{.Server.Version}}' >/dev/null && echo docker=ok; "
            "dd if=/dev/zero of=/run/tutorial-gateway/fill bs=1k count=1 2>&1; echo write=$?; "
            "rm -f /run/tutorial-gateway/docker.sock 2>&1; echo unlink=$?"
        )
        assert "docker=ok" in result.output, result.output
        assert "write=0" not in result.output
        assert "unlink=0" not in result.output
        assert workspace.socket.is_socket()
    finally:
        await workspace.backend.destroy(workspace.id)
    assert labelled_leftovers(workspace.id) == []
