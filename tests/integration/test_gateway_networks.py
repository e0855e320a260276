"""Learner networks come from the gateway's own address range, so a class never runs out."""

import asyncio

import pytest

from tests.integration.gateway_helpers import gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine]


async def test_more_learner_networks_than_the_engines_default_pools_hold(gateway_images, docker_client, settings, labelled_leftovers):
    # The engine's default pools hold about 30 bridge networks; 40 must fit from the gateway's range.
    workspaces = []
    try:
        for _ in range(8):
            workspaces.append(await start_workspace())
        scripts = [
            workspace.sh(f"for i in 1 2 3; do docker network create net$i-{workspace.id[:8]} >/dev/null || exit 1; done; "
                         "docker run --rm 127.0.0.1:5000/library/busybox true && echo made")
            for workspace in workspaces
        ]
        results = await asyncio.gather(*scripts)
        assert all("made" in result.output for result in results), [r.output for r in results]
        subnets = []
        for network in docker_client.networks.list(filters={"label": "tutorial.gateway"}):
            for config in network.attrs["IPAM"]["Config"] or []:
                subnets.append(config["Subnet"])
        ours = [subnet for subnet in subnets if subnet.startswith("10.213.")]
        assert len(ours) >= 8 * 4  # each learner's own network and three more
        assert len(set(ours)) == len(ours), "two learner networks share a subnet"
    finally:
        for workspace in workspaces:
            await workspace.backend.destroy(workspace.id)
    for workspace in workspaces:
        assert labelled_leftovers(workspace.id) == []
