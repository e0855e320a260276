"""The ``toolbox`` image: the sandbox base plus ``kubectl`` (the Kubernetes workspace console).

No registry is reachable here, so kubectl is copied from this machine. It must be a *static*
binary (the base has no libc). Looked for, in order:

1. ``$TUTORIAL_KUBECTL`` (any static kubectl you downloaded yourself);
2. the static kubectl of the local cluster (``python -m cluster build``), the same version as its
   API server;
3. ``/usr/local/bin/kubectl`` (the official release binary is static);
4. the version-pinned kubectl binaries of the Google Cloud SDK package ``kubectl``
   (``/usr/lib/google-cloud-sdk/bin/kubectl.1.3x``), which these machines have.

Debian 12's own ``kubernetes-client`` package is kubectl 1.20: too old for any current cluster
(kubectl supports one minor version of skew), so it is not used. Call :func:`find_kubectl` for a
clear error when none is present. The candidates and the recipe are listed with every other
image's in ``sandbox.images.recipes``.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.images.recipes import KUBECTL_CANDIDATES, RECIPES, BuildError

RECIPE = RECIPES["toolbox"]


def find_kubectl() -> Path:
    """The static kubectl the toolbox image will contain, or a ``BuildError`` that says what to do."""
    for candidate in KUBECTL_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    raise BuildError(
        "The toolbox image needs a static kubectl and none was found at "
        f"{', '.join(KUBECTL_CANDIDATES)}. Download the official kubectl release binary for your "
        "cluster's version and set TUTORIAL_KUBECTL=/path/to/kubectl (Debian 12's kubernetes-client "
        "is kubectl 1.20, too old for current clusters)."
    )
