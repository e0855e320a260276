"""Build the sandbox images offline from ``sandbox/images/<name>/`` (used by ``build_images``).

What to build is listed in ``sandbox.images.recipes``. Each image folder holds a Dockerfile and its
context. Host files the build needs (the static busybox, the docker CLI, kubectl) are copied into a
temporary context, never committed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import docker
from django.conf import settings

from sandbox.images.recipes import RECIPES, BuildError, ImageRecipe, image_tag

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
        f"{', '.join(candidates)}. On Debian: apt-get install busybox-static bash-static jq docker.io"
    )


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
