"""The reaper's Lease: who takes, renews or waits, and what two replicas racing for it end with."""

from __future__ import annotations

import copy
import datetime as dt
import types

import pytest
from kubernetes.client.exceptions import ApiException

from sandbox import lease

NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(("record", "identity", "now", "expected"), [
    (None, "a", NOW, lease.TAKE),
    (lease.LeaseRecord(holder=""), "a", NOW, lease.TAKE),
    (lease.LeaseRecord(holder="a", renewed=NOW), "a", at(5), lease.RENEW),
    (lease.LeaseRecord(holder="a", renewed=NOW), "a", at(300), lease.RENEW),
    (lease.LeaseRecord(holder="b", renewed=NOW, duration_seconds=30), "a", at(29), lease.WAIT),
    (lease.LeaseRecord(holder="b", renewed=NOW, duration_seconds=30), "a", at(30), lease.TAKE),
    (lease.LeaseRecord(holder="b", renewed=None), "a", NOW, lease.TAKE),
])
def test_decide(record, identity, now, expected):
    assert lease.decide(record, identity, now) == expected


def test_taking_over_from_another_holder_counts_a_transition():
    record = lease.LeaseRecord(holder="b", renewed=NOW, transitions=3)
    spec = lease.next_spec(record, "a", at(60), lease.TAKE, 30)
    assert spec == {"holderIdentity": "a", "leaseDurationSeconds": 30, "renewTime": at(60),
                    "acquireTime": at(60), "leaseTransitions": 4}
    assert lease.next_spec(record, "b", at(5), lease.RENEW, 30)["leaseTransitions"] == 3


class FakeCoordinationApi:
    """Leases kept as the API server keeps them: a write with a stale resourceVersion gets 409."""

    def __init__(self):
        self.leases: dict[tuple[str, str], dict] = {}
        self.version = 0
        self.down = False

    def _check(self):
        if self.down:
            raise ConnectionRefusedError("API server down")

    def _obj(self, stored: dict):
        spec = stored["spec"]
        return types.SimpleNamespace(
            metadata=types.SimpleNamespace(resource_version=stored["rv"]),
            spec=types.SimpleNamespace(holder_identity=spec.get("holderIdentity"),
                                       renew_time=spec.get("renewTime"),
                                       lease_duration_seconds=spec.get("leaseDurationSeconds"),
                                       acquire_time=spec.get("acquireTime"),
                                       lease_transitions=spec.get("leaseTransitions")))

    def read_namespaced_lease(self, name, namespace, **kwargs):
        assert kwargs.get("_request_timeout"), "every call has a deadline"
        self._check()
        if (namespace, name) not in self.leases:
            raise ApiException(status=404)
        return self._obj(self.leases[(namespace, name)])

    def create_namespaced_lease(self, namespace, body, **kwargs):
        assert kwargs.get("_request_timeout")
        self._check()
        key = (namespace, body["metadata"]["name"])
        if key in self.leases:
            raise ApiException(status=409)
        self.version += 1
        self.leases[key] = {"rv": str(self.version), "spec": copy.deepcopy(body["spec"])}

    def replace_namespaced_lease(self, name, namespace, body, **kwargs):
        assert kwargs.get("_request_timeout")
        self._check()
        stored = self.leases[(namespace, name)]
        if body["metadata"]["resourceVersion"] != stored["rv"]:
            raise ApiException(status=409)
        self.version += 1
        self.leases[(namespace, name)] = {"rv": str(self.version), "spec": copy.deepcopy(body["spec"])}


def elector(api, identity):
    return lease.LeaseElector("reaper", "tutorial", identity, api=api, duration_seconds=30)


def test_one_of_two_replicas_holds_and_the_other_takes_over_when_it_stops_renewing():
    api = FakeCoordinationApi()
    first, second = elector(api, "reaper-1"), elector(api, "reaper-2")
    assert first.hold(NOW) is True
    assert second.hold(at(1)) is False
    assert first.hold(at(10)) is True           # renewed
    assert second.hold(at(35)) is False         # renewed at 10: still valid at 35
    assert second.hold(at(41)) is True          # the first stopped renewing at 10
    assert first.hold(at(42)) is False          # and now waits
    assert api.leases[("tutorial", "reaper")]["spec"]["leaseTransitions"] == 1


def test_a_replica_that_read_a_stale_version_loses_the_race():
    api = FakeCoordinationApi()
    first, second = elector(api, "reaper-1"), elector(api, "reaper-2")
    first.hold(NOW)
    # The second reads the expired Lease, then the first renews before the second writes.
    real_read = api.read_namespaced_lease

    def read_then_renew(name, namespace, **kwargs):
        seen = real_read(name, namespace, **kwargs)
        api.read_namespaced_lease = real_read
        assert first.hold(at(31)) is True
        return seen

    api.read_namespaced_lease = read_then_renew
    assert second.hold(at(31)) is False
    assert api.leases[("tutorial", "reaper")]["spec"]["holderIdentity"] == "reaper-1"


def test_a_holder_that_cannot_reach_the_api_server_stops_reaping_at_once():
    api = FakeCoordinationApi()
    first = elector(api, "reaper-1")
    assert first.hold(NOW) is True
    api.down = True
    assert first.hold(at(5)) is False


def test_release_lets_the_other_replica_take_over_before_expiry():
    api = FakeCoordinationApi()
    first, second = elector(api, "reaper-1"), elector(api, "reaper-2")
    first.hold(NOW)
    first.release()
    assert second.hold(at(1)) is True


async def test_the_reaper_loop_reaps_only_while_holding(monkeypatch):
    from sandbox import reaper

    passes = []

    async def fake_reap_once(scope=None):
        passes.append(1)
        return reaper.Report()

    answers = iter([False, True, False])

    async def may_reap():
        return next(answers)

    monkeypatch.setattr(reaper, "reap_once", fake_reap_once)
    await reaper.run_loop(0, passes=3, may_reap=may_reap)
    assert passes == [1]
