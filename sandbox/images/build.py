"""Build the sandbox images offline from ``sandbox/images/<name>/`` (used by ``build_images``).

What to build is listed in ``sandbox.images.recipes``. Each image folder holds a Dockerfile and its
context. Host files the build needs (the static busybox, the docker CLI, kubectl) are copied into a
temporary context, never committed; so are the libraries of the dynamically linked ones (jq, curl),
read from their ELF headers, into the context's ``lib/``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import docker
from django.conf import settings

from sandbox.images.elf import ElfError, library_closure
from sandbox.images.recipes import LIB_DIRS, RECIPES, BuildError, ImageRecipe, image_tag

IMAGES_DIR = Path(__file__).resolve().parent


def register(recipe: ImageRecipe) -> None:
    """Add or replace a recipe (one a test builds besides the project's own)."""
    RECIPES[recipe.name] = recipe


def _find_host_file(candidates: tuple[str, ...], name: str) -> Path:
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file():
            return path
    raise BuildError(
        f"{name} is needed to build the sandbox images offline and was not found at "
        f"{', '.join(candidates)}. On Debian: apt-get install busybox-static bash-static jq curl ca-certificates docker.io"
    )


def copy_libraries(recipe: ImageRecipe, context: Path) -> list[str]:
    """Copy every library the recipe's dynamically linked programs load into ``context/lib/``
    (the files, not the symlinks: the image gets them under their sonames). Returns the sonames."""
    sonames: list[str] = []
    for name in recipe.with_libraries:
        try:
            closure = library_closure(context / name, LIB_DIRS)
        except ElfError as exc:
            raise BuildError(f"{name} cannot run in the image without every library it loads: {exc}") from exc
        for soname, path in closure.items():
            if soname not in sonames:
                (context / "lib").mkdir(exist_ok=True)
                shutil.copy2(path, context / "lib" / soname)
                sonames.append(soname)
    return sonames


def build_order(names: list[str]) -> list[str]:
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name not in RECIPES:
            raise BuildError(f"no image recipe named {name!r}; known: {', '.join(sorted(RECIPES))}")
        for dep in RECIPES[name].depends_on:
            visit(dep)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def build_image(client: docker.DockerClient, name: str, *, base: str | None = None) -> str:
    recipe = RECIPES[name]
    source = IMAGES_DIR / name
    with tempfile.TemporaryDirectory(prefix=f"tutorial-image-{name}-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(source, context)
        for target, candidates in recipe.host_files.items():
            found = _find_host_file(candidates, target)
            destination = context / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, destination)
        copy_libraries(recipe, context)
        buildargs = {"BASE": base or settings.SANDBOX_BASE_IMAGE, "PREFIX": settings.SANDBOX_IMAGE_PREFIX}
        tag = image_tag(name)
        try:
            image, _logs = client.images.build(
                path=str(context), tag=tag, buildargs=buildargs, rm=True, forcerm=True,
                labels={"tutorial.image": name},
            )
        except docker.errors.BuildError as exc:
            lines = "".join(chunk.get("stream", "") or chunk.get("error", "") for chunk in exc.build_log)
            raise BuildError(f"building {tag} failed: {exc.msg}\n{lines[-2000:]}") from exc
        return f"{tag} {image.short_id}"
