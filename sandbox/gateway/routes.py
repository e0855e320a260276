"""The gateway's allowlist: which Engine API calls a learner may make, and which handler judges each.

``ROUTE_TABLE`` is data: (methods, path pattern, handler name), tried in order against the
normalised path (``policy.normalise_target``); a call no route matches is refused. The proxy binds
the names to its handlers once, at import (``compile_routes``), so a route naming a handler that
does not exist stops the gateway from starting instead of failing on a learner's request.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

ROUTE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("GET HEAD", r"^/_ping$", "passthrough"),
    ("GET", r"^/version$", "passthrough"),
    ("GET", r"^/info$", "info"),
    ("GET", r"^/containers/json$", "list_owned"),
    ("POST", r"^/containers/create$", "container_create"),
    ("POST", r"^/containers/prune$", "prune"),
    ("GET", r"^/containers/(?P<id>[^/]+)/(json|top|logs|changes|export|stats)$", "container_op"),
    ("GET HEAD PUT", r"^/containers/(?P<id>[^/]+)/archive$", "container_archive"),
    ("POST", r"^/containers/(?P<id>[^/]+)/(start|stop|restart|kill|pause|unpause|wait|resize|attach|rename)$",
     "container_op"),
    ("POST", r"^/containers/(?P<id>[^/]+)/update$", "container_update"),
    ("POST", r"^/containers/(?P<id>[^/]+)/exec$", "exec_create"),
    ("DELETE", r"^/containers/(?P<id>[^/]+)$", "container_op"),
    ("POST", r"^/exec/(?P<id>[^/]+)/(start|resize)$", "exec_op"),
    ("GET", r"^/exec/(?P<id>[^/]+)/json$", "exec_op"),
    ("GET", r"^/images/json$", "images_list"),
    ("POST", r"^/images/create$", "image_pull"),
    ("POST", r"^/images/prune$", "prune"),
    ("GET", r"^/images/(?P<name>.+)/(json|history)$", "image_read"),
    ("POST", r"^/images/(?P<name>.+)/tag$", "image_tag"),
    ("POST", r"^/images/(?P<name>.+)/push$", "image_push"),
    ("DELETE", r"^/images/(?P<name>.+)$", "image_remove"),
    ("POST", r"^/build$", "build"),
    ("GET", r"^/networks$", "list_owned"),
    ("POST", r"^/networks/create$", "network_create"),
    ("POST", r"^/networks/prune$", "prune"),
    ("GET DELETE", r"^/networks/(?P<id>[^/]+)$", "network_op"),
    ("POST", r"^/networks/(?P<id>[^/]+)/(connect|disconnect)$", "network_connect"),
    ("GET", r"^/volumes$", "list_owned"),
    ("POST", r"^/volumes/create$", "volume_create"),
    ("POST", r"^/volumes/prune$", "prune"),
    ("GET DELETE", r"^/volumes/(?P<id>[^/]+)$", "volume_op"),
    ("GET", r"^/events$", "events"),
    # `docker inspect NAME` tries plugins last: "no such object", not a refusal.
    ("GET", r"^/plugins/(?P<name>.+)/json$", "not_found"),
)


@dataclasses.dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    pattern: re.Pattern
    name: str  # the handler's name in ``ROUTE_TABLE``, for logs
    handler: Callable


def compile_routes(table, handlers: Mapping[str, Callable]) -> tuple[Route, ...]:
    """``table`` with each handler name bound to its function in ``handlers``; a name that is not
    there raises LookupError."""
    unknown = sorted({name for _, _, name in table if name not in handlers})
    if unknown:
        raise LookupError(f"gateway routes name handlers that do not exist: {', '.join(unknown)}")
    return tuple(Route(tuple(methods.split()), re.compile(pattern), name, handlers[name])
                 for methods, pattern, name in table)


def find_route(routes: tuple[Route, ...], method: str, path: str) -> tuple[Route, re.Match] | None:
    """The first route that allows ``method`` on ``path``, with its match, or None."""
    for route in routes:
        match = route.pattern.match(path)
        if match and method in route.methods:
            return route, match
    return None
