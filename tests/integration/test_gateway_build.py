"""Builds through a real learner gateway on the real engine: the Dockerfile the gateway checked is
the one the engine built (whitespace, BOM, linked folders, flags), ADD never fetches a URL from the
host, and two learners share no build cache and no parent images."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tarfile

import docker
import docker.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.gateway.dockerfile import plan
from sandbox.gateway.server import short_path

from .gateway_helpers import blocks, gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

REG = "127.0.0.1:5000/library"
BUSYBOX = f"{REG}/busybox"
IMAGES = [f"{REG}/busybox", f"{REG}/hello", f"{REG}/web"]


def _ancestors(client: docker.DockerClient, image_id: str) -> list[str]:
    chain = []
    while image_id:
        chain.append(image_id)
        image_id = client.api.inspect_image(image_id).get("Parent") or ""
    return chain


async def test_a_classmates_image_cannot_be_reached_by_reading_the_dockerfile_differently(gateway_images, docker_client):
    a, b = await start_workspace(), await start_workspace()
    try:
        setup = await b.sh(f"mkdir img && printf 'FROM {BUSYBOX}\\nRUN echo classmate-secret > /b\\n' > img/Dockerfile"
                           " && docker build -q -t bimg:1 img")
        assert setup.exit_code == 0, setup.output
        attempts = {
            "tab": r"printf 'FROM\tbimg:1\nRUN cat /b\n'",
            "vertical tab": r"printf 'FROM\vbimg:1\nRUN cat /b\n'",
            "form feed": r"printf 'FROM\fbimg:1\nRUN cat /b\n'",
            "bom": r"printf '\357\273\277FROM bimg:1\nRUN cat /b\n'",
            "copy tab from": fr"printf 'FROM {BUSYBOX}\nCOPY\t--from=bimg:1 /b /b\nRUN cat /b\n'",
            "continuation": r"printf 'FROM \\\n# hidden\n  bimg:1\nRUN cat /b\n'",
            "own stage name": fr"printf 'FROM {BUSYBOX} AS bimg:1\nCOPY --from=bimg:1 /b /b\nRUN cat /b\n'",
        }
        script = []
        for name, write in attempts.items():
            folder = name.replace(" ", "-")
            script.append(f'echo "== {name}"; mkdir -p {folder} && {write} > {folder}/Dockerfile'
                          f' && docker build --no-cache {folder} 2>&1; echo "rc=$?"')
        found = blocks(await a.out("; ".join(script), timeout=300))
        for name in attempts:
            text = found[name]
            assert "classmate-secret" not in text and "rc=0" not in text, f"{name}: {text}"
        for name in ("tab", "vertical tab", "form feed", "bom", "copy tab from", "continuation"):
            assert "bimg:1, which is not an image of yours" in found[name], f"{name}: {found[name]}"
        # A Dockerfile reached through a linked folder (`sub -> .`), which the engine follows. The
        # CLI resolves links in -f itself, so this goes to the API as a script would send it.
        context = _context(("sub", None, "."), ("Dockerfile", b"FROM scratch\n", ""),
                           ("Dockerfile", b"FROM bimg:1\nRUN cat /b\n", ""))
        image_id, log = await asyncio.to_thread(_build, a.socket, context, {}, "sub/Dockerfile")
        assert image_id is None and "reached through a link" in log and "classmate-secret" not in log, log
    finally:
        await a.backend.destroy(a.id)
        await b.backend.destroy(b.id)


async def test_add_of_a_url_is_refused_and_nothing_is_fetched(gateway_images):
    ws = await start_workspace()
    try:
        out = await ws.out(
            "mkdir -p u && printf 'FROM scratch\\nADD http://127.0.0.1:5000/v2/_catalog /catalog\\n' > u/Dockerfile"
            " && docker build u 2>&1; echo rc=$?;"
            "mkdir -p v && printf 'FROM scratch\\nADD\\t--chown=1:1 [\"http://127.0.0.1:5000/v2/_catalog\", \"/c\"]\\n'"
            " > v/Dockerfile && docker build v 2>&1; echo rc=$?")
        assert out.count("ADD of a URL is not allowed by classroom policy") == 2, out
        assert "rc=0" not in out and "repositories" not in out and "Downloading" not in out, out
    finally:
        await ws.backend.destroy(ws.id)


async def test_two_learners_share_no_build_cache_and_no_parent_images(gateway_images, docker_client):
    a, b = await start_workspace(), await start_workspace()
    dockerfile = f"printf 'FROM {BUSYBOX}\\nRUN echo same > /same\\nRUN echo again > /again\\n' > same/Dockerfile"
    try:
        first = await a.sh(f"mkdir same && {dockerfile} && docker build -t same:1 same 2>&1 && docker images -q --no-trunc same:1")
        assert first.exit_code == 0, first.output
        again = await a.sh("docker build -t same:1 same 2>&1")
        assert again.output.count("Using cache") >= 2, again.output  # a learner's own cache still works
        # Tags are engine-wide names (B cannot take same:1); the cache knows nothing of tags.
        second = await b.sh(f"mkdir same && {dockerfile} && docker build -t same-b:1 same 2>&1 && docker images -q --no-trunc same-b:1")
        assert second.exit_code == 0, second.output
        assert "Using cache" not in second.output, second.output
        a_id, b_id = first.output.strip().splitlines()[-1], second.output.strip().splitlines()[-1]
        base = docker_client.images.get(BUSYBOX).id
        a_chain, b_chain = _ancestors(docker_client, a_id), _ancestors(docker_client, b_id)
        assert set(a_chain) & set(b_chain) == set(_ancestors(docker_client, base))
        # Removing A's image takes all of A's layers with it: none is a parent of B's.
        removed = await a.sh("docker rmi same:1 2>&1")
        assert removed.exit_code == 0, removed.output
        left = {i.id for i in docker_client.images.list(all=True)}
        assert not (set(a_chain) - set(b_chain)) & left
        assert b_id in left
    finally:
        await a.backend.destroy(a.id)
        await b.backend.destroy(b.id)


# -- differential: what the gateway's parser says FROM names is what the engine built on ---------
SEPARATORS = [" ", "\t", "\x0b", "\x0c", " \t ", "\t\x0b\x0c "]


@st.composite
def dockerfiles(draw):
    """(Dockerfile bytes, build args, the image it is meant to be built FROM)."""
    image = draw(st.sampled_from(IMAGES))
    decoy = draw(st.sampled_from(IMAGES))
    escape = draw(st.sampled_from([None, "\\", "`"]))
    esc = escape or "\\"
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = []
    if escape:
        lines.append(draw(st.sampled_from(["# escape={}", "#escape = {}", "# ESCAPE={}  "])).format(escape))
    if draw(st.booleans()):
        lines.append("# a comment")
    build_args = {}
    how = draw(st.sampled_from(["literal", "arg", "braced", "default", "buildarg", "stage"]))
    if how == "literal":
        name = image
    elif how == "arg":
        lines.append(f"ARG BASE={image}")
        name = "$BASE"
    elif how == "braced":
        lines.append(f'ARG BASE="{image}"')
        name = "${BASE}"
    elif how == "default":
        lines.append("ARG BASE")
        name = "${BASE:-" + image + "}"
    elif how == "buildarg":
        lines.append(f"ARG BASE={decoy}")
        build_args = {"BASE": image}
        name = "$BASE"
    else:
        lines.append(f"FROM {image} AS first")
        lines.append("LABEL step=one")
        name = "FIRST"
    sep = draw(st.sampled_from(SEPARATORS))
    if draw(st.booleans()):  # the name on a continuation line, maybe past a comment
        sep = f"{sep}{esc}{newline}" + draw(st.sampled_from(["", "# between\n", "  # between\n"])) + "  "
    lines.append(f"{draw(st.sampled_from(['FROM', 'from', 'From']))}{sep}{name}")
    lines.append(draw(st.sampled_from(["LABEL x=1", f"LABEL\tx=1 {esc}{newline}  y=2", "ENV A=b"])))
    text = newline.join(lines) + newline
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode(), build_args, image


def _context(*members: tuple[str, bytes | None, str]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _build(socket, context: io.BytesIO, build_args: dict, dockerfile: str = "Dockerfile") -> tuple[str | None, str]:
    """A build sent to the learner's gateway through the API: the image id (None if refused), the log."""
    with short_path(socket) as path:
        return _build_at(path, context, build_args, dockerfile)


def _build_at(path: str, context: io.BytesIO, build_args: dict, dockerfile: str) -> tuple[str | None, str]:
    api = docker.APIClient(base_url=f"unix://{path}", version="1.41", timeout=120)
    try:
        log, image_id = [], None
        for chunk in api.build(fileobj=context, custom_context=True, buildargs=build_args, rm=True, decode=True,
                               dockerfile=dockerfile):
            log.append(chunk.get("stream") or chunk.get("error") or json.dumps(chunk))
            image_id = (chunk.get("aux") or {}).get("ID", image_id)
            if "error" in chunk:
                image_id = None
        return image_id, "".join(log)
    except docker.errors.APIError as exc:
        return None, str(exc)
    finally:
        api.close()


async def test_what_the_parser_says_from_names_is_what_the_engine_builds_on(gateway_images, docker_client):
    ws = await start_workspace()
    seen = []

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(dockerfiles())
    def check(example):
        dockerfile, build_args, meant = example
        said = plan(dockerfile, build_args).base_images[0]
        assert said == meant, dockerfile
        image_id, log = _build(ws.socket, _context(("Dockerfile", dockerfile, "")), build_args)
        assert image_id, f"{dockerfile!r}: {log}"
        try:
            base = docker_client.images.get(said)
            built = docker_client.api.inspect_image(image_id)
            assert base.id in _ancestors(docker_client, image_id), f"{dockerfile!r} was not built on {said}: {log}"
            assert built["RootFS"]["Layers"] == base.attrs["RootFS"]["Layers"], dockerfile
            seen.append(dockerfile)
        finally:
            # Each example is one more image of the learner's; without removing it, the examples
            # run into the per-learner image limit and the build is refused for that, not the parser.
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(image_id, force=True, noprune=False)

    try:
        await asyncio.to_thread(check)
        assert len(seen) >= 10
    finally:
        await ws.backend.destroy(ws.id)


async def test_the_context_is_what_the_learner_sent_without_the_gateways_dockerfile(gateway_images):
    ws = await start_workspace()
    try:
        out = await ws.out(
            "mkdir -p ctx/app && echo hi > ctx/app/a.txt && echo secret > ctx/notes.log"
            " && printf '*.log\\nDockerfile\\n' > ctx/.dockerignore"
            f" && printf 'FROM {BUSYBOX}\\nCOPY . /ctx/\\nCMD [\"ls\", \"-a\", \"/ctx\"]\\n' > ctx/Dockerfile"
            " && docker build -q -t ctx:1 ctx >/dev/null && echo '== listed' && docker run --rm ctx:1"
            # A Dockerfile from stdin: the CLI adds it under a random name and to .dockerignore.
            f" && echo '== stdin' && printf 'FROM {BUSYBOX}\\nCOPY app /app\\nCMD [\"ls\", \"-a\", \"/app\"]\\n'"
            " | docker build -q -t ctx:2 -f - ctx >/dev/null && docker run --rm ctx:2", timeout=150)
        found = blocks(out)
        listed = found["listed"].split()
        assert "app" in listed and ".dockerignore" in listed, out
        assert "Dockerfile" not in listed and "notes.log" not in listed and ".tutorial.Dockerfile" not in listed, out
        assert "a.txt" in found["stdin"].split(), out
    finally:
        await ws.backend.destroy(ws.id)
