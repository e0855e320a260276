"""Every sandbox image the project builds, as data, and the tag each gets (``image_tag``).

A leaf: it imports nothing of the project but the local cluster's file layout (where its static
kubectl lives), so the builder, the services, the doctor and the lesson loader all read the one
list without importing each other. ``sandbox.images.build`` builds what is listed here.
"""

from __future__ import annotations

import dataclasses
import os

from django.conf import settings

from cluster.layout import Layout


class BuildError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class ImageRecipe:
    name: str
    # host files copied into the context: {context name: candidate host paths}
    host_files: dict[str, tuple[str, ...]]
    depends_on: tuple[str, ...] = ()
    # context names (among host_files) of dynamically linked programs whose every library, read
    # from their ELF headers, is copied into the context's lib/ (see sandbox.images.elf)
    with_libraries: tuple[str, ...] = ()


def image_tag(name: str) -> str:
    """Full tag of a project-built sandbox image, e.g. ``base`` -> ``tutorial/base:latest``."""
    if ":" in name or "/" in name:
        return name
    return f"{settings.SANDBOX_IMAGE_PREFIX}/{name}:latest"


BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

# Imported scenarios (Killercoda, Katacoda) assume bash, jq and curl. bash comes as Debian's
# bash-static; jq and curl are Debian's, dynamically linked, so each travels with the libraries its
# ELF headers name (curl: libcurl and about thirty more), glibc and the loader, which the base then
# holds once for every image built on it (the docker CLI needs glibc too). Libraries are looked
# for where Debian's loader looks by default.
LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu")

BASE_FILES = {
    "busybox": BUSYBOX_CANDIDATES,
    "bash": ("/bin/bash-static", "/usr/bin/bash-static"),
    "jq": ("/usr/bin/jq",),
    "curl": ("/usr/bin/curl",),
    "ld-linux-x86-64.so.2": ("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    # Debian's CA bundle, where Debian's curl looks for it: public certificates, nothing secret.
    # Sandboxes have no internet, but https to a host that has a public certificate (a self-hoster
    # with a network, a mirror) then verifies as it does elsewhere, and without it every https
    # URL fails with a certificate-file error that says nothing about the real cause.
    "ca-certificates.crt": ("/etc/ssl/certs/ca-certificates.crt",),
}
BASE_PROGRAMS_WITH_LIBRARIES = ("jq", "curl")

# The docker workspace's sandbox image carries the docker CLI. Debian's docker.io client is
# dynamically linked against glibc only, which the base image holds.
DOCKER_CLI_FILES = {
    "docker": ("/usr/bin/docker",),
}

# The small lesson images ``seed_registry`` pushes into the classroom registry:
# recipe name -> name in the registry's shared namespace (library/).
LESSON_IMAGES = {
    "lesson-busybox": "busybox",
    "lesson-hello": "hello",
    "lesson-web": "web",
}

# The Kubernetes workspace's console image needs a *static* kubectl (the base has no libc); the
# order it is looked for in is explained in ``sandbox.images.toolbox``.
KUBECTL_CANDIDATES: tuple[str, ...] = tuple(
    path
    for path in (
        os.environ.get("TUTORIAL_KUBECTL", ""),
        str(Layout.from_environment().program("kubectl")),
        "/usr/local/bin/kubectl",
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.33",
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.32",
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.31",
    )
    if path
)

RECIPES: dict[str, ImageRecipe] = {
    recipe.name: recipe
    for recipe in (
        ImageRecipe("base", BASE_FILES, with_libraries=BASE_PROGRAMS_WITH_LIBRARIES),
        ImageRecipe("docker", DOCKER_CLI_FILES, depends_on=("base",)),
        ImageRecipe("lesson-busybox", {"busybox": BUSYBOX_CANDIDATES}),
        ImageRecipe("lesson-hello", {}, depends_on=("lesson-busybox",)),
        ImageRecipe("lesson-web", {}, depends_on=("lesson-busybox",)),
        ImageRecipe("toolbox", {"kubectl": KUBECTL_CANDIDATES}, depends_on=("base",)),
    )
}
