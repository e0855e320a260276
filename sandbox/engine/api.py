"""Facts about the engine's API that every caller shares."""

from __future__ import annotations

from urllib.parse import urlparse

from .errors import EngineUnavailable

# The oldest engine we support (Debian 12's docker.io 20.10). Paths are sent as /v1.41/...
API_VERSION = "v1.41"
# The same version as the docker SDK takes it (no leading "v").
SDK_API_VERSION = API_VERSION[1:]


def unix_path(docker_host: str) -> str:
    parsed = urlparse(docker_host)
    if parsed.scheme not in ("unix", "http+unix"):
        raise EngineUnavailable(f"only unix-socket Docker hosts are supported, not {docker_host!r}")
    return parsed.path


def engine_down_message(docker_host: str, detail: object = None) -> str:
    """What a person reads when the engine does not answer: where, why, and how to fix it."""
    because = f" ({detail})" if detail not in (None, "") else ""
    return (
        f"The Docker engine does not answer at {docker_host}{because}. "
        "Install it (apt-get install docker.io), start it (scripts/start-dockerd.sh) and try again."
    )
