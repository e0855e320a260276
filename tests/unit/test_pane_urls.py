"""The pane's links come from a per-process cache of reverse(): they must be what reverse() gives,
for every sandbox, under any script prefix the site is served at."""

import uuid

from django.urls import reverse, set_script_prefix

from lessons.sandbox_pane import SANDBOX_URL_NAMES, lesson_urls, sandbox_urls


def test_each_link_is_what_reverse_gives():
    for sandbox_id in (uuid.uuid4(), uuid.uuid4()):
        urls = sandbox_urls(sandbox_id)
        assert urls == {name: reverse(f"sandbox:{name}", args=[sandbox_id]) for name in SANDBOX_URL_NAMES}
    assert lesson_urls("what-is-a-container") == {
        "start": reverse("sandbox:start", args=["what-is-a-container"]),
        "lesson_pane": reverse("sandbox:lesson_pane", args=["what-is-a-container"]),
    }


def test_links_follow_the_script_prefix():
    sandbox_id = uuid.uuid4()
    set_script_prefix("/class/")
    try:
        assert sandbox_urls(sandbox_id)["stop"] == f"/class/sandboxes/{sandbox_id}/stop/"
        assert lesson_urls("what-is-a-container")["start"] == "/class/sandboxes/start/what-is-a-container/"
    finally:
        set_script_prefix("/")
    assert sandbox_urls(sandbox_id)["stop"] == f"/sandboxes/{sandbox_id}/stop/"
