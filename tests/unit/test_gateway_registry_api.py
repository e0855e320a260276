"""The read-only registry API rules: what a learner may ask the classroom registry from inside a
sandbox (pure functions, no engine, no registry)."""

from __future__ import annotations

import json

import pytest

from sandbox.gateway.policy import Learner
from sandbox.gateway.registry_api import RegistryDenied, filter_catalog, registry_request

ME = Learner(sandbox_id="s-1", owner_id="7")
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("target, upstream", [
    ("/v2/", "/v2/"),
    ("/v2/learner-7/hello/tags/list", "/v2/learner-7/hello/tags/list"),
    ("/v2/learner-7/hello/tags/list?n=2&last=v1", "/v2/learner-7/hello/tags/list?n=2&last=v1"),
    ("/v2/library/hello/manifests/latest", "/v2/library/hello/manifests/latest"),
    (f"/v2/learner-7/a/b/manifests/{DIGEST}", f"/v2/learner-7/a/b/manifests/{DIGEST}"),
    (f"/v2/library/web/blobs/{DIGEST}", f"/v2/library/web/blobs/{DIGEST}"),
    ("/v2/library/hello/tags/list?evil=1", "/v2/library/hello/tags/list"),
])
def test_reads_of_the_lesson_images_and_my_namespace_pass(target, upstream):
    assert registry_request(ME, "GET", target).upstream == upstream
    assert registry_request(ME, "HEAD", target).upstream == upstream


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
def test_writes_are_refused_with_a_pointer_to_docker_push(method):
    with pytest.raises(RegistryDenied) as refused:
        registry_request(ME, method, "/v2/learner-7/hello/manifests/v1")
    assert refused.value.status == 405
    assert "docker push" in refused.value.message
    body = json.loads(refused.value.response().split(b"\r\n\r\n", 1)[1])
    assert body["errors"][0]["code"] == "UNSUPPORTED"


@pytest.mark.parametrize("target", [
    "/v2/learner-8/hello/tags/list",  # a classmate's repository
    "/v2/learner-77/hello/tags/list",  # a prefix of mine is not mine
    f"/v2/learner-8/hello/blobs/{DIGEST}",
    "/v2/learner-8/hello/manifests/v1",
])
def test_another_learners_repository_does_not_exist(target):
    with pytest.raises(RegistryDenied) as refused:
        registry_request(ME, "GET", target)
    assert (refused.value.status, refused.value.code) == (404, "NAME_UNKNOWN")


@pytest.mark.parametrize("target", [
    "/v2/library/../learner-8/hello/tags/list",
    "/v2/library/%2e%2e/learner-8/hello/tags/list",
    "/v2/library//hello/tags/list",
    "/v2/Library/hello/tags/list",
    "/v2/library/hello/manifests/../../learner-8/x",
    "/v2/library/hello/blobs/latest",  # blobs by digest only
    "/v2/library/hello/blobs/uploads/",
    "/v1/_ping",
    "/containers/json",
    "http://127.0.0.1:5000/v2/_catalog",
])
def test_anything_else_is_not_found(target):
    with pytest.raises(RegistryDenied) as refused:
        registry_request(ME, "GET", target)
    assert refused.value.status == 404


def test_a_page_size_must_be_a_number():
    with pytest.raises(RegistryDenied) as refused:
        registry_request(ME, "GET", "/v2/library/hello/tags/list?n=all")
    assert refused.value.status == 400


def test_the_catalog_shows_the_lesson_images_and_mine_only():
    request = registry_request(ME, "GET", "/v2/_catalog?n=2")
    assert request.kind == "catalog" and request.page == 2
    upstream = json.dumps({"repositories": ["learner-7/hello", "learner-8/secret", "learner-77/x",
                                            "library/busybox", "library/hello", 42]}).encode()
    assert json.loads(filter_catalog(upstream, request.visible)) == {
        "repositories": ["learner-7/hello", "library/busybox", "library/hello"]}
    assert json.loads(filter_catalog(upstream, request.visible, request.page)) == {
        "repositories": ["learner-7/hello", "library/busybox"]}
    assert json.loads(filter_catalog(b"not json", request.visible)) == {"repositories": []}
