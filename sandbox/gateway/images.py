"""Image recipes of the docker workspace: the sandbox image with the docker CLI, and the small
lesson images pushed into the classroom registry by ``seed_registry``.

Importing this module registers them with ``sandbox.images.build`` (``build_images`` builds them).
"""

from __future__ import annotations

from sandbox.images.build import BUSYBOX_CANDIDATES, ImageRecipe, register

DOCKER_CLI_FILES = {
    # Debian's docker.io client is dynamically linked against glibc only: the CLI, libc, the loader.
    "docker": ("/usr/bin/docker",),
    "libc.so.6": ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
    "ld-linux-x86-64.so.2": ("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
}

# Lesson images: recipe name -> name in the registry's shared namespace (library/).
LESSON_IMAGES = {
    "lesson-busybox": "busybox",
    "lesson-hello": "hello",
    "lesson-web": "web",
}

register(ImageRecipe("docker", DOCKER_CLI_FILES, depends_on=("base",)))
register(ImageRecipe("lesson-busybox", {"busybox": BUSYBOX_CANDIDATES}))
register(ImageRecipe("lesson-hello", {}, depends_on=("lesson-busybox",)))
register(ImageRecipe("lesson-web", {}, depends_on=("lesson-busybox",)))
