"""What async code hands to the worker thread (``sync_to_async``): each hop is a wait behind
every other request's database work, so tests count them."""

from __future__ import annotations

import contextlib

from asgiref import sync as asgiref_sync


@contextlib.contextmanager
def worker_thread_calls():
    """The callables handed to the worker thread meanwhile, in order."""
    calls = []
    original = asgiref_sync.SyncToAsync.__call__

    def recording(self, *args, **kwargs):
        calls.append(self.func)
        return original(self, *args, **kwargs)

    asgiref_sync.SyncToAsync.__call__ = recording
    try:
        yield calls
    finally:
        asgiref_sync.SyncToAsync.__call__ = original


def names(calls) -> list[str]:
    """The recorded callables by name (a callable object by its class's)."""
    return [getattr(func, "__name__", type(func).__name__) for func in calls]
