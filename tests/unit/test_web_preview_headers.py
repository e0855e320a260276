"""The web preview's rules that need no engine: links are signed and expire, and only an allow-list
of headers crosses between a viewer's browser and a learner's server, in either direction."""

from __future__ import annotations

import uuid

import pytest
from django.test import RequestFactory
from multidict import CIMultiDict

from sandbox import preview
from sandbox.backends.base import PublishedPort

TARGET = PublishedPort("32768", "web", 8080, "127.0.0.1", 32768)

SANDBOX = uuid.uuid4()


def test_a_link_names_the_sandbox_port_and_viewer_and_cannot_be_altered():
    token = preview.make_link(SANDBOX, 32768, 7).split("/")[2]
    assert preview.read_token(token) == (SANDBOX, "32768", 7)
    other = preview.make_link(SANDBOX, 5000, 7).split("/")[2]
    forged = other.split(":")[0] + ":" + ":".join(token.split(":")[1:])
    with pytest.raises(preview.PreviewRefused) as refused:
        preview.read_token(forged)
    assert refused.value.status == 404


def test_an_old_link_is_refused_with_a_way_forward():
    token = preview.make_link(SANDBOX, 32768, 7).split("/")[2]
    with pytest.raises(preview.PreviewRefused, match="expired: open the preview again") as refused:
        preview.read_token(token, max_age=-1)
    assert refused.value.status == 410


def test_the_sites_cookies_and_credentials_never_reach_the_learners_server(settings):
    request = RequestFactory().get("/preview/t/", HTTP_AUTHORIZATION="Basic eA==", HTTP_X_CSRFTOKEN="t",
                                   HTTP_ACCEPT="text/html", HTTP_COOKIE=f"{settings.SESSION_COOKIE_NAME}=s; "
                                   f"{settings.CSRF_COOKIE_NAME}=c; {settings.LANGUAGE_COOKIE_NAME}=zh-hans; theirs=1")
    headers = preview.request_headers(request)
    assert headers == {"Accept": "text/html", "Cookie": "theirs=1"}


def test_the_learners_server_cannot_set_cookies_or_a_policy_and_its_redirects_stay_inside():
    upstream = CIMultiDict([("Content-Type", "text/html"), ("Set-Cookie", "sessionid=x; Path=/"),
                            ("Content-Security-Policy", "default-src *"), ("Access-Control-Allow-Origin", "*"),
                            ("Location", "/login?next=/")])
    headers = preview.response_headers(upstream, "/preview/T/", TARGET)
    assert "Set-Cookie" not in headers and "Access-Control-Allow-Origin" not in headers
    assert headers["Content-Security-Policy"] == preview.SANDBOX_POLICY and "allow-same-origin" not in headers["Content-Security-Policy"]
    assert headers["Location"] == "/preview/T/login?next=/"
    assert preview.response_headers(CIMultiDict(Location="http://127.0.0.1:32768/a"), "/preview/T/", TARGET)["Location"] == "/preview/T/a"
    assert preview.response_headers(CIMultiDict(Location="next.html"), "/preview/T/", TARGET)["Location"] == "next.html"
    assert "Location" not in preview.response_headers(CIMultiDict(Location="https://elsewhere.example/"), "/preview/T/", TARGET)
    assert "Location" not in preview.response_headers(CIMultiDict(Location="//elsewhere.example/"), "/preview/T/", TARGET)
