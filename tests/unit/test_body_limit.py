"""The ASGI side of the body limit (tutorial/body_limit.py), for servers that stream bodies: a
Content-Length over the limit, or streamed chunks adding up past it, get 413 and the application
never reads past the limit. (Daphne's own guard is tested against a real daphne in
tests/integration/test_request_limits_daphne.py.)"""

from __future__ import annotations

from tutorial.body_limit import RequestBodyLimit


def _scope(headers=()):
    return {"type": "http", "method": "POST", "path": "/", "headers": list(headers)}


async def _serve(limit, scope, chunks):
    sent, read = [], []
    events = iter([{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)])

    async def receive():
        return next(events)

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):
        while True:
            message = await receive()
            read.append(len(message["body"]))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    await RequestBodyLimit(app, max_bytes=limit)(scope, receive, send)
    return sent[0]["status"], sum(read)


async def test_an_announced_length_over_the_limit_is_refused_unread():
    status, read = await _serve(100, _scope([(b"content-length", b"101")]), [b"x" * 101])
    assert (status, read) == (413, 0)


async def test_a_malformed_length_is_refused():
    assert (await _serve(100, _scope([(b"content-length", b"12abc")]), [b""]))[0] == 413


async def test_streamed_chunks_past_the_limit_are_refused_before_the_app_gets_them():
    status, read = await _serve(100, _scope(), [b"x" * 60, b"x" * 60, b"x" * 60])
    assert status == 413 and read == 60


async def test_a_body_within_the_limit_reaches_the_app():
    assert await _serve(100, _scope([(b"content-length", b"100")]), [b"x" * 50, b"x" * 50]) == (200, 100)
