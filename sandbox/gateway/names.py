"""Learner-visible names for containers, volumes and networks on the one shared engine.

Container, volume and network names are global to an engine, so two learners doing the same lesson
(`docker run --name site`, `docker volume create notes`) would collide. The gateway gives each
object an engine name made of the sandbox's prefix and the learner's name, and translates both
ways: what a learner sends is prefixed before it reaches the engine, and the prefix is removed from
what the engine answers. The learner only ever sees and types their own names.

The prefix is ``l`` + 16 hex digits of a hash of the sandbox id + ``_``: a fixed length, so a
learner's name (which may itself contain ``_``) can never make ``prefix_B + name`` equal to
``prefix_A + anything``; and a leading ``l`` that is not a hex digit, so a scoped name is never read
by the engine as an id prefix. A learner who types another learner's full engine name gets it
prefixed once more, which names nothing: not found. Ownership labels are still checked on
everything, as before.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

_HEX = re.compile(r"^[0-9a-f]{1,64}$")


class Names:
    def __init__(self, sandbox_id: str):
        self.prefix = "l" + hashlib.sha256(sandbox_id.encode()).hexdigest()[:16] + "_"

    def engine(self, name: str) -> str:
        """The engine's name for the learner's ``name``."""
        return self.prefix + name

    def learner(self, name: str) -> str:
        """The learner's name for an engine name (a leading ``/``, as containers have, is kept);
        a name without this learner's prefix (their default network, say) is shown as it is."""
        slash = "/" if name.startswith("/") else ""
        bare = name[len(slash):]
        return slash + bare[len(self.prefix):] if bare.startswith(self.prefix) else name

    def refs(self, ref: str) -> list[str]:
        """What to look up on the engine for a learner's reference to a container or network:
        their own name first, then, if it could be one, an id (hex) as given."""
        return [self.engine(ref)] + ([ref] if _HEX.match(ref) else [])

    def scrub(self, value: Any) -> Any:
        """``value`` (an engine answer: JSON or a message) with this learner's prefix removed from
        every string and key, wherever an engine name appears: ``Name``, ``Names``, network keys,
        ``Binds``, ``Mounts[].Name`` and ``Source`` paths, ``NetworkMode``, error messages."""
        if isinstance(value, str):
            return value.replace(self.prefix, "")
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value

    def scope_create(self, body: dict, own_network: str, name: str, networks: dict | None = None) -> dict:
        """A planned container-create body (``policy.plan_container_create``) with its volume and
        network names made the engine's, and the learner's container name as a network alias, so
        containers on a learner network find each other by the names the learner gave them (the
        engine only knows the scoped name). ``networks`` maps a network the learner named (or gave
        by id) to its engine name, as the ownership check found it."""
        host = body.get("HostConfig") or {}
        if host.get("Binds"):
            host["Binds"] = [self.engine(bind) for bind in host["Binds"]]  # the source comes first
        for mount in host.get("Mounts") or []:
            if mount.get("Type") == "volume":
                mount["Source"] = self.engine(mount["Source"])
        mode = host.get("NetworkMode", "")
        scoped = mode if mode in ("", "none", own_network) else (networks or {}).get(mode) or self.engine(mode)
        host["NetworkMode"] = scoped
        endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        # The policy keeps at most one endpoint, on the container's network.
        endpoints = {scoped if key == mode else key: value for key, value in endpoints.items()}
        if name and scoped not in ("", "none"):
            endpoint = endpoints.setdefault(scoped, {})
            aliases = list(endpoint.get("Aliases") or [])
            if name not in aliases:
                aliases.append(name)
            endpoint["Aliases"] = aliases
        if endpoints:
            body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
        return body
