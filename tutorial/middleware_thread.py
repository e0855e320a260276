"""One worker thread for the whole middleware stack, not a hop per middleware.

Under ASGI Django runs a middleware that can be async in async mode, and ``MiddlewareMixin``
(every middleware in ``MIDDLEWARE``) does that by calling each ``process_request`` and
``process_response`` through ``sync_to_async``: two thread hops per middleware, about twenty per
request, each a hand-over between the event loop and a worker thread that a busy class waits on.
This sync-only middleware, last in ``MIDDLEWARE``, makes Django build the stack in sync mode:
the whole stack runs in one worker thread and one ``async_to_sync`` returns to the event loop for
the view (async views, such as Start and Check, keep running on the loop).
"""

from __future__ import annotations


class MiddlewareInOneThread:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
