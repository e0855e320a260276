"""Every message the server itself writes to a person reads in Chinese for a Chinese reader:
rate limits (429 pages and htmx answers), refusals, form errors, stop reasons saved in English,
the error pages, and the console websocket's close reasons."""

from __future__ import annotations

import re

import pytest
from django.test import Client, RequestFactory
from django.utils import translation

from lessons.catalogue import get_lesson
from sandbox import texts
from sandbox.models import Sandbox
from tests.factories import LESSON
from tests.websockets import next_text

pytestmark = pytest.mark.django_db
HAN = re.compile(r"[\u4e00-\u9fff]")
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


def _chinese_client(user=None) -> Client:
    client = Client(**ZH)
    if user is not None:
        client.force_login(user)
    return client


def _throttle_text(html: str) -> str:
    found = re.search(r"data-throttled>([^<]*)<", html) or re.search(r'role="alert"[^>]*>([^<]*)<', html)
    assert found, html[:2000]
    return found.group(1)


def _assert_chinese(text: str, *english: str) -> None:
    assert HAN.search(text), text
    for words in english:
        assert words not in text


def test_too_many_log_ins(settings):
    settings.RATE_LOGINS_PER_ADDRESS = "1/m"
    client = _chinese_client()
    client.post("/accounts/login/", {"username": "nobody", "password": "x"})
    locked = client.post("/accounts/login/", {"username": "nobody", "password": "x"})
    assert locked.status_code == 429
    _assert_chinese(_throttle_text(locked.content.decode()), "Too many", "try again")


def test_too_many_sign_ups_and_a_reserved_name(settings):
    settings.RATE_SIGNUPS_PER_ADDRESS = "1/h"
    client = _chinese_client()
    form = {"username": "guest-abc", "password1": "correct horse battery 9", "password2": "correct horse battery 9"}
    html = client.post("/accounts/signup/", form).content.decode()
    assert "kept for guests" not in html and "留给访客" in html
    refused = client.post("/accounts/signup/", {**form, "username": "lin"})
    assert refused.status_code == 429
    html = refused.content.decode()
    assert "Too many" not in html and "注册太多" in html


def test_too_many_guests_and_guests_off(settings):
    settings.RATE_GUESTS_PER_ADDRESS = "1/h"
    _chinese_client().post("/accounts/guest/")
    refused = _chinese_client().post("/accounts/guest/")
    assert refused.status_code == 429
    html = refused.content.decode()
    assert "Too many" not in html and "访客会话太多" in html
    settings.GUESTS_ENABLED = False
    off = _chinese_client().post("/accounts/guest/").content.decode()
    assert "turned off" not in off and "本站已关闭访客访问" in off


def test_too_many_joins(classroom, settings):
    settings.RATE_JOINS_PER_ADDRESS = "1/h"
    url = f"/classrooms/join/{classroom.join_code}/"
    _chinese_client().post(url, {"display_name": "小明"})
    refused = _chinese_client().post(url, {"display_name": "小红"})
    assert refused.status_code == 429
    html = refused.content.decode()
    assert "Too many" not in html and "加入请求太多" in html


def test_too_many_sandbox_actions_and_checks(owner, settings):
    settings.RATE_SANDBOX_ACTIONS = "1/m"
    settings.RATE_CHECKS = "1/m"
    sandbox = Sandbox.objects.create(owner=owner, lesson=LESSON, workspace="plain", image="x", state="running")
    client = _chinese_client(owner)
    client.post(f"/sandboxes/{sandbox.id}/restart/", HTTP_HX_REQUEST="true")
    pane = client.post(f"/sandboxes/{sandbox.id}/restart/", HTTP_HX_REQUEST="true").content.decode()
    assert "Too many" not in pane and "沙箱操作太多" in pane
    plain = client.post(f"/sandboxes/{sandbox.id}/restart/")
    assert plain.status_code == 429 and "沙箱操作太多" in plain.content.decode()
    url = f"/lessons/{LESSON}/steps/{get_lesson(LESSON).steps[0].slug}/check/"
    client.post(url, HTTP_HX_REQUEST="true")
    check = client.post(url)
    assert check.status_code == 429
    _assert_chinese(_throttle_text(check.content.decode()), "Too many", "try again")


def test_a_stop_reason_saved_in_english_reads_in_chinese(owner):
    Sandbox.objects.create(owner=owner, lesson=LESSON, workspace="plain", image="x", state="stopped",
                           failure_reason=texts.render(texts.IDLE_STOPPED, minutes=30))
    html = _chinese_client(owner).get(f"/lessons/{LESSON}/").content.decode()
    assert "without activity" not in html and "30 分钟没有活动后已停止" in html


@pytest.mark.parametrize("status", [400, 403, 404, 500])
def test_the_error_pages(status, settings):
    from django.views import defaults

    request = RequestFactory().get("/x/", **ZH)
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    handler = {400: lambda r: defaults.bad_request(r, Exception()), 403: lambda r: defaults.permission_denied(r, Exception()),
               404: lambda r: defaults.page_not_found(r, Exception()), 500: defaults.server_error}[status]
    with translation.override("zh-hans"):
        html = handler(request).content.decode()
    assert 'lang="zh-hans"' in html and HAN.search(html)
    visible = re.sub(r"<[^>]+>|\{[^}]*\}", " ", re.sub(r"<(script|style|head)[^>]*>.*?</\1>", " ", html, flags=re.S))
    english = [w for w in re.findall(r"[A-Za-z]{3,}", visible) if w not in ("Docker", "Kubernetes")]
    assert not english, english


@pytest.mark.django_db(transaction=True)
async def test_a_console_refused_to_a_chinese_reader_says_why_in_chinese(owner, classmate, console):
    sandbox = await Sandbox.objects.acreate(owner=owner, lesson=LESSON, workspace="plain", image="x", state="running")
    communicator = await console(sandbox.id, classmate, extra_headers=[(b"accept-language", b"zh-CN,zh;q=0.9")])
    connected, _ = await communicator.connect()
    assert connected
    message = await next_text(communicator, timeout=5)
    assert message["type"] == "close" and message["code"] == 4403
    assert message["reason"] == "这个终端不是你的。"
