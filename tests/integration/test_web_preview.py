"""The web preview on the real engine: a port a learner's container publishes opens through the site
for that learner only, inside a browser sandbox policy, with the site's cookies kept from the
learner's server and the learner's cookies kept from the site; nothing else on the machine is
reachable through it."""

from __future__ import annotations

import pytest
from django.test import AsyncClient

from sandbox import preview, services
from sandbox.models import Sandbox

from .gateway_helpers import gateway_images  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

# A web server whose one CGI script tells what it was sent and tries to set the site's session cookie.
ECHO_SERVER = (
    "docker run -d --name echo -p 127.0.0.1::8080 127.0.0.1:5000/library/busybox sh -c '"
    "mkdir -p /tmp/w/cgi-bin && echo hello-from-the-container > /tmp/w/index.html && "
    "printf \"#!/bin/sh\\necho Content-Type: text/plain\\necho Set-Cookie: sessionid=planted\\necho\\n"
    "echo cookie=[\\$HTTP_COOKIE] method=\\$REQUEST_METHOD query=\\$QUERY_STRING\\n\" > /tmp/w/cgi-bin/env && "
    "chmod +x /tmp/w/cgi-bin/env && exec httpd -f -p 8080 -h /tmp/w' >/dev/null && sleep 1 && echo started"
)


async def _body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join([chunk async for chunk in response.streaming_content])
    return response.content


@pytest.fixture
async def published(gateway_images, owner):  # noqa: F811
    sandbox = await services.start_sandbox(owner, "containers", "docker", "docker")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    try:
        started = await services.get_backend("docker").run(sandbox.engine_ref, ECHO_SERVER, timeout=60)
        assert "started" in started.output, started.output
        ports = await preview.ports_of(sandbox)
        assert len(ports) == 1 and ports[0].port == 8080 and ports[0].name == "echo", ports
        assert ports[0].key == str(ports[0].host_port) and ports[0].host == "127.0.0.1"
        preview.forget_ownership()
        yield sandbox, ports[0].host_port
    finally:
        await services.stop_sandbox(sandbox)


async def test_the_owner_sees_their_page_inside_a_browser_sandbox(published, owner):
    sandbox, port = published
    link = preview.make_link(sandbox.id, port, owner.pk)
    client = AsyncClient()
    page = await client.get(link)
    assert page.status_code == 200 and b"hello-from-the-container" in await _body(page)
    policy = page["Content-Security-Policy"]
    assert policy.startswith("sandbox ") and "allow-same-origin" not in policy

    await client.aforce_login(owner)
    client.cookies["csrftoken"] = "site-csrf"
    client.cookies["learner_app"] = "kept"
    answer = await client.get(link + "cgi-bin/env?x=1")
    text = (await _body(answer)).decode()
    assert "query=x=1" in text and "method=GET" in text
    assert "learner_app=kept" in text, text
    assert "sessionid" not in text and "site-csrf" not in text, text  # the site's cookies stay here
    # ...and the learner's server cannot set the site's (its Set-Cookie is dropped).
    assert "sessionid" not in answer.cookies and "planted" not in str(answer.cookies)

    posted = await client.post(link + "cgi-bin/env", data=b"a=b", content_type="application/x-www-form-urlencoded")
    assert posted.status_code == 200 and "method=POST" in (await _body(posted)).decode()


async def test_no_one_else_and_nothing_else_is_reachable(published, owner, classmate):
    sandbox, port = published
    client = AsyncClient()
    # A classmate holding a link made out to them (they could not get one from the site) is refused.
    assert (await client.get(preview.make_link(sandbox.id, port, classmate.pk))).status_code == 403
    # A forged or altered link names nothing.
    link = preview.make_link(sandbox.id, port, owner.pk)
    assert (await client.get(link[:-3] + "xx/")).status_code == 404
    # A port the sandbox's containers do not publish, such as the registry's, is never forwarded.
    registry = await client.get(preview.make_link(sandbox.id, 5000, owner.pk) + "v2/_catalog")
    assert registry.status_code == 404 and b"publishes 5000" in registry.content

    # Once the container is gone, so is the preview.
    await services.get_backend("docker").run(sandbox.engine_ref, "docker rm -f echo", timeout=30)
    preview.forget_ownership()
    assert (await client.get(link)).status_code == 404


async def test_the_pane_lists_the_ports_with_links_for_the_owner_only(published, owner, classmate):
    sandbox, port = published
    client = AsyncClient()
    await client.aforce_login(owner)
    html = (await client.get(f"/sandboxes/{sandbox.id}/ports/")).content.decode()
    assert f'data-port="{port}"' in html and "/preview/" in html and "echo, port 8080" in html
    other = AsyncClient()
    await other.aforce_login(classmate)
    assert (await other.get(f"/sandboxes/{sandbox.id}/ports/")).status_code == 403


async def test_turned_off_the_preview_forwards_nothing(published, owner, settings):
    sandbox, port = published
    settings.WEB_PREVIEW = False
    answer = await AsyncClient().get(preview.make_link(sandbox.id, port, owner.pk))
    assert answer.status_code == 404 and b"turned off" in answer.content


async def test_the_learners_instructor_may_open_it_and_another_instructor_may_not(published, owner, outsider):
    from asgiref.sync import sync_to_async

    from classroom import roster as classroom_roster
    from tests.factories import make_instructor

    sandbox, port = published
    teacher = await sync_to_async(make_instructor)("preview-teacher")
    stranger = await sync_to_async(make_instructor)("preview-stranger")

    def make_classrooms():
        mine = classroom_roster.create_classroom(teacher, "Ports class", [sandbox.lesson])
        classroom_roster.join(mine, owner, "Olive Owner")
        theirs = classroom_roster.create_classroom(stranger, "Other class", [sandbox.lesson])
        classroom_roster.join(theirs, outsider, "Otto Outsider")

    await sync_to_async(make_classrooms)()
    client = AsyncClient()
    await client.aforce_login(teacher)
    listing = (await client.get(f"/sandboxes/{sandbox.id}/ports/")).content.decode()
    assert f'data-port="{port}"' in listing
    link = preview.make_link(sandbox.id, port, teacher.pk)
    assert (await AsyncClient().get(link)).status_code == 200

    other = AsyncClient()
    await other.aforce_login(stranger)
    assert (await other.get(f"/sandboxes/{sandbox.id}/ports/")).status_code == 403
    assert (await AsyncClient().get(preview.make_link(sandbox.id, port, stranger.pk))).status_code == 403
