"""Two installs of the site on one Docker engine, each with its own database: the reaper of one
never removes the other's containers, networks or volumes, and still removes its own orphans.

Install A is this test process (``settings.INSTALL_ID``, the test database). Install B is a
second site as it really runs: its own process (``manage.py reap_sandboxes``), its own SQLite
database and data folder, its own ``TUTORIAL_INSTALL_ID``. Objects from before installs were
labelled count as an install's only when its database has a row of their sandbox."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import docker.types
import pytest
from asgiref.sync import sync_to_async

from sandbox import reaper, services
from sandbox.backends.base import (
    LABEL_INSTALL,
    LABEL_ROLE,
    LABEL_SANDBOX,
    LABEL_WORKSPACE,
    ROLE_CONSOLE,
    Limits,
    SandboxSpec,
)
from sandbox.images.recipes import image_tag
from sandbox.models import Sandbox

from .lifecycle_helpers import cleanup, make_user, only, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
REPO = Path(__file__).resolve().parents[2]


def spec_for(install: str) -> SandboxSpec:
    return SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=1, owner_name="someone", lesson="elsewhere",
                       workspace="plain", image=image_tag("base"), limits=Limits(), install=install)


def network_and_volume(client, sandbox_id: str, install: str) -> None:
    """What a sandbox of ``install`` may also hold on the engine: a network and a volume."""
    labels = {LABEL_SANDBOX: sandbox_id, LABEL_INSTALL: install, LABEL_WORKSPACE: "plain"}
    subnet = f"10.254.{random.randrange(256)}.{random.randrange(0, 256, 8)}/29"
    client.networks.create(f"tutorial-test-{sandbox_id[:12]}", driver="bridge", internal=True, labels=labels,
                           ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)]))
    client.volumes.create(f"tutorial-test-{sandbox_id[:12]}", labels=labels)


def unlabelled_console(client, image: str) -> str:
    """A console container as made before installs were labelled (no ``tutorial.install``)."""
    sandbox_id = str(uuid.uuid4())
    client.containers.create(image, ["sleep", "600"], name=f"tutorial-sbx-{sandbox_id}", labels={
        LABEL_SANDBOX: sandbox_id, LABEL_ROLE: ROLE_CONSOLE, LABEL_WORKSPACE: "plain", "tutorial.owner": "1"})
    return sandbox_id


def other_install(tmp_path: Path, install: str):
    """Run ``manage.py`` as install B: its own database, data folder and install id."""
    data = tmp_path / "install-b"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TUTORIAL_INSTALL_ID=install, TUTORIAL_DATA_DIR=str(data), TUTORIAL_SQLITE_PATH=str(data / "db.sqlite3"))

    def manage(*args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    manage("migrate", "-v0")
    return manage


async def test_two_installs_on_one_engine_reap_only_their_own(settings, base_image, docker_client, tmp_path, cleanup,
                                                              labelled_leftovers):
    ours, theirs_install = f"test-a-{uuid.uuid4().hex[:8]}", f"test-b-{uuid.uuid4().hex[:8]}"
    settings.INSTALL_ID = ours
    backend = services.get_backend("plain")

    # Install A (this process): a running sandbox and an orphan of its own (no row).
    mine = await start(await make_user())
    our_orphan = spec_for(ours)
    await backend.create(our_orphan)
    # Install B: a running sandbox with a network and a volume (its row is in B's database), and
    # an orphan of its own.
    theirs = spec_for(theirs_install)
    theirs_ref = await backend.create(theirs)
    await sync_to_async(network_and_volume)(docker_client, theirs.sandbox_id, theirs_install)
    their_orphan = spec_for(theirs_install)
    await backend.create(their_orphan)
    # From before install labels: one whose sandbox A's database knows (stopped), one nobody knows.
    legacy_ours = await sync_to_async(unlabelled_console)(docker_client, base_image)
    owner = await make_user()
    await Sandbox.objects.acreate(id=legacy_ours, owner=owner, lesson="old", workspace="plain", image=base_image,
                                  state=Sandbox.State.STOPPED)
    legacy_unknown = await sync_to_async(unlabelled_console)(docker_client, base_image)
    everything = [mine, our_orphan.sandbox_id, theirs.sandbox_id, their_orphan.sandbox_id, legacy_ours, legacy_unknown]
    cleanup.extend(everything)
    theirs_before = sorted(labelled_leftovers(theirs.sandbox_id))
    assert len(theirs_before) == 3  # container, network, volume

    report = await reaper.reap_once(only(*everything))
    assert sorted(report.orphans_removed) == sorted([our_orphan.sandbox_id, legacy_ours]), report
    assert labelled_leftovers(our_orphan.sandbox_id) == [] and labelled_leftovers(legacy_ours) == []
    assert sorted(labelled_leftovers(theirs.sandbox_id)) == theirs_before
    assert labelled_leftovers(their_orphan.sandbox_id) and labelled_leftovers(legacy_unknown)
    assert labelled_leftovers(mine.id)

    # Install B's own reaper, with its own database: its running sandbox has a row there.
    manage = other_install(tmp_path, theirs_install)
    manage("shell", "-c", (
        "from django.contrib.auth import get_user_model; from sandbox.models import Sandbox; "
        "u = get_user_model().objects.create_user('b-learner'); "
        f"Sandbox.objects.create(id='{theirs.sandbox_id}', owner=u, lesson='elsewhere', workspace='plain', "
        f"image='{base_image}', state='running', engine_ref='{theirs_ref}')"))
    scope = [arg for sandbox_id in [str(mine.id), theirs.sandbox_id, their_orphan.sandbox_id, legacy_unknown]
             for arg in ("--sandbox", sandbox_id)]
    b_report = json.loads(manage("reap_sandboxes", *scope, "--json"))
    assert b_report["orphans_removed"] == 1  # its own orphan
    assert labelled_leftovers(their_orphan.sandbox_id) == []
    assert sorted(labelled_leftovers(theirs.sandbox_id)) == theirs_before
    assert labelled_leftovers(mine.id) and labelled_leftovers(legacy_unknown)
    await mine.arefresh_from_db()
    assert mine.state == Sandbox.State.RUNNING

    # Containers carry the install that made them.
    labels = docker_client.api.inspect_container(mine.engine_ref)["Config"]["Labels"]
    assert labels[LABEL_INSTALL] == ours
    await services.stop_sandbox(mine)
