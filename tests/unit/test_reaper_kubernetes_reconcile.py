"""The reaper on a site on a cluster: its pass over the Kubernetes workspace removes the consoles
and namespaces of no sandbox, and never those of a sandbox a learner starts while the pass runs
(its row, then its namespace and console, appear between the pass's reads); and a site with no
Docker engine is not held back as if that engine were down. Fake backends stand in for the cluster."""

from __future__ import annotations

import datetime as dt

from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone

from sandbox import engines, reaper
from sandbox.backends.base import EngineUnavailable
from sandbox.models import Sandbox


class FakeCluster:
    """A cluster's sandboxes (``{sandbox_id: toolbox ref}``); ``while_listing`` runs the first time
    the cluster is listed (what happens elsewhere while the reaper looks)."""

    def __init__(self, objects: dict[str, str], while_listing=None):
        self.objects = dict(objects)
        self.destroyed: list[str] = []
        self._while_listing = while_listing

    async def _listing(self) -> dict[str, str]:
        if self._while_listing is not None:
            happening, self._while_listing = self._while_listing, None
            await happening(self)
        return dict(self.objects)

    async def list_owned(self) -> dict[str, str]:
        return await self._listing()

    async def reconcile(self, live_sandbox_ids, in_scope=None) -> list[str]:
        live = {str(sandbox_id) for sandbox_id in live_sandbox_ids}
        removed = []
        for sandbox_id in sorted(set(await self._listing()) - live):
            if in_scope is None or in_scope(sandbox_id):
                self.objects.pop(sandbox_id)
                self.destroyed.append(sandbox_id)
                removed.append(sandbox_id)
        return removed


def reconcile() -> reaper.Report:
    report = reaper.Report()
    async_to_sync(reaper._reconcile_kubernetes)(lambda _sandbox_id: True, report)
    return report


def test_a_sandbox_started_while_the_reaper_looks_keeps_its_console(owner, kubernetes_site):
    orphan = "0b6f4a52-5d7e-4f43-a3a4-1f0f7a3b9c22"
    started: list[str] = []

    async def a_learner_starts_a_sandbox(cluster: FakeCluster) -> None:
        sandbox = await sync_to_async(Sandbox.objects.create)(owner=owner, lesson="pods", workspace="kubernetes",
                                                              image="toolbox", state=Sandbox.State.STARTING)
        cluster.objects[str(sandbox.id)] = "tutorial-sbx-new"
        started.append(str(sandbox.id))

    cluster = kubernetes_site(FakeCluster({orphan: "tutorial-sbx-orphan"}, while_listing=a_learner_starts_a_sandbox))
    report = reconcile()
    assert report.orphans_removed == [orphan] and cluster.destroyed == [orphan]
    assert started[0] in cluster.objects, "the new sandbox's console was deleted as it started"

    # Once its row is there, a later pass leaves it alone too; a sandbox whose row went is removed.
    Sandbox.objects.filter(pk=started[0]).update(state=Sandbox.State.STOPPED)
    assert reconcile().orphans_removed == started


class NoDockerEngine:
    """The Docker backend of a site with no engine: every listing fails as it would."""

    async def labelled(self, kind, labels):
        raise EngineUnavailable("The Docker engine does not answer at unix:///var/run/docker.sock.")


def test_a_site_without_a_docker_engine_still_cleans_up_a_stuck_start(owner, fake_backend, settings, monkeypatch):
    settings.DOCKER_ENGINE = False  # the site on a cluster: plain sandboxes are pods
    monkeypatch.setattr(reaper, "_docker_backend", NoDockerEngine)
    sandbox = Sandbox.objects.create(owner=owner, lesson="what-is-a-container", workspace="plain", image="base",
                                     state=Sandbox.State.STARTING,
                                     started_at=timezone.now() - dt.timedelta(seconds=settings.SANDBOX_START_TIMEOUT_SECONDS + 60))
    async_to_sync(fake_backend().create)(engines.spec_for(sandbox))

    report = async_to_sync(reaper.reap_once)({str(sandbox.id)}.__contains__)
    assert report.engine_problem == "" and report.stuck_failed == [str(sandbox.id)]
    assert str(sandbox.id) not in fake_backend.sandboxes, "the stuck sandbox's pod was left running"
