"""The reaper renews the learner token of running Kubernetes sandboxes before it expires: the due
ones (a bounded number per pass, oldest first), each on its own, and none while the local
cluster is not ready. A fake backend stands in for the cluster."""

from __future__ import annotations

import datetime as dt

from asgiref.sync import async_to_sync
from django.utils import timezone

from sandbox import reaper
from sandbox.backends.base import BackendError
from sandbox.models import Sandbox


class FakeCredentialsBackend:
    """Answers ``credentials_due`` from a set; records refreshes; fails for the ids told to."""

    def __init__(self, due=(), broken=(), unreadable=()):
        self.due, self.broken, self.unreadable = set(due), set(broken), set(unreadable)
        self.refreshed: list[tuple[str, str]] = []
        self.asked: list[str] = []

    async def credentials_due(self, sandbox_id: str) -> bool:
        self.asked.append(sandbox_id)
        if sandbox_id in self.unreadable:
            raise BackendError(f"Could not read namespace tutorial-{sandbox_id}: boom")
        return sandbox_id in self.due

    async def refresh_credentials(self, sandbox_id: str, ref: str) -> None:
        if sandbox_id in self.broken:
            raise BackendError(f"Could not get a token for the learner in tutorial-{sandbox_id}: boom")
        self.refreshed.append((sandbox_id, ref))


def running(owner, minutes_ago: int, *, workspace="kubernetes", state=Sandbox.State.RUNNING, ref="toolbox") -> str:
    sandbox = Sandbox.objects.create(owner=owner, lesson="pods", workspace=workspace, image="toolbox", state=state,
                                     engine_ref=f"{ref}-{minutes_ago}",
                                     started_at=timezone.now() - dt.timedelta(minutes=minutes_ago))
    return str(sandbox.id)


def renew() -> reaper.Report:
    report = reaper.Report()
    async_to_sync(reaper.renew_kubernetes_credentials)(lambda _sandbox_id: True, report)
    return report


def test_only_running_kubernetes_sandboxes_that_are_due_get_new_credentials(owner, kubernetes_site):
    due_one, fresh = running(owner, 200), running(owner, 5)
    stopped = running(owner, 300, state=Sandbox.State.STOPPED)
    plain = running(owner, 250, workspace="plain")
    backend = kubernetes_site(FakeCredentialsBackend(due={due_one, stopped, plain}))
    report = renew()
    assert backend.refreshed == [(due_one, "toolbox-200")]
    assert report.credentials_renewed == [due_one]
    assert sorted(backend.asked) == sorted([due_one, fresh])
    assert report.failures == []


def test_a_failure_on_one_sandbox_does_not_stop_the_others(owner, kubernetes_site):
    first, broken, unreadable, last = running(owner, 40), running(owner, 30), running(owner, 20), running(owner, 10)
    backend = kubernetes_site(FakeCredentialsBackend(due={first, broken, unreadable, last}, broken={broken},
                                                     unreadable={unreadable}))
    report = renew()
    assert sorted(report.credentials_renewed) == sorted([first, last])
    assert {ref for _id, ref in backend.refreshed} == {"toolbox-40", "toolbox-10"}
    assert len(report.failures) == 2
    assert any(f.startswith(broken) and "Could not get a token" in f for f in report.failures)
    assert any(f.startswith(unreadable) and "Could not read namespace" in f for f in report.failures)


def test_renewals_per_pass_are_bounded_oldest_first(owner, kubernetes_site, monkeypatch):
    monkeypatch.setattr(reaper, "CREDENTIALS_PER_PASS", 2)
    ids = [running(owner, minutes) for minutes in (10, 30, 20)]
    backend = kubernetes_site(FakeCredentialsBackend(due=set(ids)))
    assert len(renew().credentials_renewed) == 2
    assert sorted(ref for _id, ref in backend.refreshed) == ["toolbox-20", "toolbox-30"]
    # The next pass takes the rest (the renewed ones are no longer due).
    backend.due -= {sandbox_id for sandbox_id, _ref in backend.refreshed}
    backend.refreshed.clear()
    renew()
    assert backend.refreshed == [(ids[0], "toolbox-10")]


def test_nothing_is_asked_while_the_local_cluster_is_not_ready(owner, kubernetes_site, monkeypatch):
    running(owner, 200)
    backend = kubernetes_site(FakeCredentialsBackend(due=set()))
    monkeypatch.setattr(reaper.local_cluster, "operator_problem", lambda settings: ("the local cluster is being prepared", True))
    report = renew()
    assert backend.asked == [] and backend.refreshed == [] and report.failures == []


def test_nothing_is_asked_without_a_kubernetes_cluster(owner, kubernetes_site, settings):
    running(owner, 200)
    backend = kubernetes_site(FakeCredentialsBackend())
    settings.KUBERNETES_KUBECONFIG = ""
    renew()
    assert backend.asked == []
