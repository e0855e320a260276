"""The learner-visible names of containers, volumes and networks (sandbox/gateway/names.py)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from sandbox.gateway import policy
from sandbox.gateway.names import Names
from sandbox.gateway.policy import Learner, Limits

A = Names(str(uuid.UUID(int=1)))
B = Names(str(uuid.UUID(int=2)))
learner_names = st.from_regex(policy.NAME_RE, fullmatch=True)


def test_a_name_goes_to_the_engine_scoped_and_comes_back_as_the_learner_gave_it():
    assert A.engine("site") != "site" and A.engine("site") != B.engine("site")
    assert A.learner(A.engine("site")) == "site"
    assert A.learner("/" + A.engine("site")) == "/site"
    assert policy.NAME_RE.match(A.engine("site"))  # the engine takes it


def test_names_without_the_learners_prefix_are_shown_as_they_are():
    assert A.learner("tutorial-learner-0123456789ab") == "tutorial-learner-0123456789ab"
    assert A.learner(B.engine("site")) == B.engine("site")


@given(learner_names, learner_names)
def test_no_learner_name_reaches_another_learners_object(name_a, name_b):
    # Whatever B types (A's full engine name, a name with the separator in it), B's engine name
    # never equals one of A's: prefixes have one length and differ.
    assert B.engine(name_b) != A.engine(name_a)
    assert not B.engine(name_b).startswith(A.prefix)


def test_typing_another_learners_engine_name_names_nothing_of_theirs():
    forged = A.engine("site")
    assert B.engine(forged) != forged
    assert B.refs(forged) == [B.engine(forged)]  # not hex: never looked up as given


def test_a_forged_prefix_in_a_name_with_the_separator_is_not_another_learners():
    tail = A.prefix[len(B.prefix) // 2:]  # a name made to look like the rest of A's prefix
    assert not B.engine(tail + "site").startswith(A.prefix)


def test_an_id_is_looked_up_as_given_after_the_learners_name():
    assert A.refs("3f2a9c") == [A.engine("3f2a9c"), "3f2a9c"]
    assert A.refs("site") == [A.engine("site")]
    assert A.prefix[0] not in "0123456789abcdef"  # a scoped name is never read as an id prefix


def test_answers_lose_the_prefix_everywhere_names_appear():
    scoped = A.engine("notes")
    inspect = {
        "Name": "/" + A.engine("site"),
        "HostConfig": {"NetworkMode": A.engine("appnet"), "Binds": [f"{scoped}:/data:ro"]},
        "Mounts": [{"Type": "volume", "Name": scoped, "Source": f"/var/lib/docker/volumes/{scoped}/_data"}],
        "NetworkSettings": {"Networks": {A.engine("appnet"): {"Aliases": ["site", "abc123"]}}},
    }
    assert A.scrub(inspect) == {
        "Name": "/site",
        "HostConfig": {"NetworkMode": "appnet", "Binds": ["notes:/data:ro"]},
        "Mounts": [{"Type": "volume", "Name": "notes", "Source": "/var/lib/docker/volumes/notes/_data"}],
        "NetworkSettings": {"Networks": {"appnet": {"Aliases": ["site", "abc123"]}}},
    }
    assert A.scrub({"message": f'Conflict. The container name "/{A.engine("site")}" is in use'}) == {
        "message": 'Conflict. The container name "/site" is in use'}
    # Another learner's names are not the answer's to translate.
    assert B.scrub(A.engine("site")) == A.engine("site")


def create_plan(learner: Learner, body: dict) -> dict:
    return policy.plan_container_create(learner, body, Limits()).body


def test_a_create_body_gets_scoped_volumes_and_networks_and_the_name_as_alias():
    learner = Learner(sandbox_id=str(uuid.UUID(int=1)), owner_id="7")
    body = create_plan(learner, {"Image": "127.0.0.1:5000/library/busybox", "HostConfig": {
        "Binds": ["notes:/data:ro"], "NetworkMode": "appnet",
        "Mounts": [{"Type": "volume", "Source": "pages", "Target": "/www"}]},
        "NetworkingConfig": {"EndpointsConfig": {"appnet": {"Aliases": ["web"]}}}})
    scoped = A.scope_create(body, learner.network, "site")
    host = scoped["HostConfig"]
    assert host["Binds"] == [f"{A.engine('notes')}:/data:ro"]
    assert host["Mounts"][0]["Source"] == A.engine("pages")
    assert host["NetworkMode"] == A.engine("appnet")
    assert scoped["NetworkingConfig"] == {"EndpointsConfig": {A.engine("appnet"): {"Aliases": ["web", "site"]}}}


def test_the_default_network_and_none_stay_and_a_network_id_uses_the_engines_name():
    learner = Learner(sandbox_id=str(uuid.UUID(int=1)), owner_id="7")
    own = A.scope_create(create_plan(learner, {"Image": "x"}), learner.network, "site")
    assert own["HostConfig"]["NetworkMode"] == learner.network
    assert own["NetworkingConfig"]["EndpointsConfig"] == {learner.network: {"Aliases": ["site"]}}
    none = A.scope_create(create_plan(learner, {"Image": "x", "HostConfig": {"NetworkMode": "none"}}),
                          learner.network, "site")
    assert none["HostConfig"]["NetworkMode"] == "none" and "NetworkingConfig" not in none
    by_id = A.scope_create(create_plan(learner, {"Image": "x", "HostConfig": {"NetworkMode": "3f2a9c"}}),
                           learner.network, "", {"3f2a9c": A.engine("appnet")})
    assert by_id["HostConfig"]["NetworkMode"] == A.engine("appnet")


def test_a_name_filter_is_literal_so_no_pattern_can_stall_the_shared_gateway():
    from sandbox.gateway.proxy import name_filter_pattern

    # As a regular expression this would backtrack for hours on this name (the test would time out).
    evil = name_filter_pattern("(a+)+$")
    assert not evil.search("a" * 40 + "!") and evil.search("x(a+)+")
    assert name_filter_pattern("^site$").search("site") and not name_filter_pattern("^site$").search("website")
    assert name_filter_pattern("sit").search("website") and not name_filter_pattern("^sit").search("website")
    assert name_filter_pattern("a.b").search("a.b") and not name_filter_pattern("a.b").search("axb")
