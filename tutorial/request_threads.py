"""Worker threads for requests' sync work, kept from one request to the next.

Django runs each request inside asgiref's ``ThreadSensitiveContext``: all of a request's sync work
(its database queries, a session save) runs on one thread that is the request's own. Django makes
that thread new for every request, and in it a new database connection object and connection:
about 1.2 ms of CPU per request on these machines (the thread, Django's connection wrapper, SQLite
opening the file and reading its schema again) against 0.3 ms for the same query on a kept thread.

Here a request borrows an idle kept thread (a one-thread executor, as Django's) for as long as it
runs, and gives it back after: still one thread per request at a time, so a slow request holds up
no other, as before. At most ``KEPT_THREADS`` idle ones are kept per process; a thread over that
number ends after its request, its database connections closed first. A kept thread's connection
lives by ``CONN_MAX_AGE`` (settings.DATABASES): Django's request signals close one that is too
old or broken. A request ended while its sync call still runs (its client went) gives its thread
back busy: the next request to take it waits for that call to end, as calls cannot be cancelled.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers import asgi
from django.db import connections

KEPT_THREADS = 8


class RequestThreads:
    """Idle one-thread executors, last in first out (the thread used last is the warmest). Used
    from the process's one event loop only."""

    def __init__(self, kept: int = KEPT_THREADS):
        self.kept = kept
        self.idle: list[ThreadPoolExecutor] = []

    def take(self) -> ThreadPoolExecutor:
        return self.idle.pop() if self.idle else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self.idle) < self.kept:
            self.idle.append(executor)
            return
        executor.submit(connections.close_all)  # in its thread: connections belong to one thread
        executor.shutdown(wait=False)


class ASGIHandler(asgi.ASGIHandler):
    """Django's handler, each request's sync work on a kept thread (:class:`RequestThreads`)."""

    threads = RequestThreads()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(executor)


def get_asgi_application() -> ASGIHandler:
    """As ``django.core.asgi.get_asgi_application``, with :class:`ASGIHandler`."""
    django.setup(set_prefix=False)
    return ASGIHandler()
