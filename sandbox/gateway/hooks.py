"""What the gateway needs from the site above it, passed in rather than imported.

The gateway sits below the sandbox services: recording a learner's activity, telling their consoles
something, and a lesson's idle timeout belong to the layers above. ``SandboxConfig.ready()``
installs the site's hooks in every Django process (the site, ``run_gateway``, the reaper); a
``GatewayServer`` given its own hooks uses those instead. Without hooks the gateway still serves:
it records no activity and sends no notices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable


@dataclasses.dataclass(frozen=True)
class SiteHooks:
    touch: Callable[[str], Awaitable[None]] | None = None  # a learner's docker command is activity
    notify: Callable[[str, str], Awaitable[None]] | None = None  # a message on the sandbox's consoles
    idle_seconds: Callable[[str], int] | None = None  # a lesson's idle timeout (0: none)


_installed = SiteHooks()


def install(hooks: SiteHooks) -> None:
    global _installed
    _installed = hooks


def installed() -> SiteHooks:
    return _installed
