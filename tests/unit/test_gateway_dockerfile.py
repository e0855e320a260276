"""Which images a Dockerfile uses, as the classic builder would resolve them (no engine)."""

from __future__ import annotations

import io
import tarfile

import pytest

from sandbox.gateway.dockerfile import DockerfileError, images_used
from sandbox.gateway.policy import PolicyDenied
from sandbox.gateway.proxy import read_dockerfiles

REG = "127.0.0.1:5000/library"


@pytest.mark.parametrize("text, used", [
    (f"FROM {REG}/busybox\nRUN true\n", [f"{REG}/busybox"]),
    ("from bimg:1\n", ["bimg:1"]),  # instructions are case-insensitive
    ("FROM scratch\nCOPY x /\n", []),
    (f"FROM {REG}/busybox AS build\nRUN make\nFROM build\nFROM Build AS again\n", [f"{REG}/busybox"]),
    (f"FROM {REG}/busybox AS build\nFROM scratch\nCOPY --from=build /a /a\nCOPY --from=0 /b /b\n", [f"{REG}/busybox"]),
    ("FROM scratch\nCOPY --chown=1:1 --from=bimg:1 /secret /\n", ["bimg:1"]),
    ("FROM scratch\nADD --from=other:2 /x /\n", ["other:2"]),
    ("FROM scratch\nONBUILD COPY --from=bimg:1 /secret /\n", ["bimg:1"]),
    ("FROM --platform=linux/amd64 mine:1\n", ["mine:1"]),
    ("ARG BASE=mine:1\nFROM $BASE\n", ["mine:1"]),
    ("ARG BASE=mine:1\nFROM ${BASE}\n", ["mine:1"]),
    ("ARG BASE\nFROM ${BASE:-mine:2}\n", ["mine:2"]),
    ("# a comment\n\nFROM \\\n  bimg:1 \\\n  AS x\n", ["bimg:1"]),
    ("FROM \\\n# comment between continuation lines\n  bimg:1\n", ["bimg:1"]),
    ("# escape=`\nFROM `\n  bimg:1\n", ["bimg:1"]),
    ("FROM scratch\r\nCOPY --from=bimg:1 / /\r\n", ["bimg:1"]),
])
def test_every_image_the_builder_would_resolve_is_found(text, used):
    assert images_used(text) == used


def test_build_args_override_arg_defaults():
    assert images_used("ARG BASE=mine:1\nFROM $BASE\n", {"BASE": "bimg:1"}) == ["bimg:1"]
    assert images_used("ARG BASE\nFROM $BASE\n", {"BASE": "bimg:1"}) == ["bimg:1"]


def test_an_arg_after_from_does_not_feed_a_later_from():
    with pytest.raises(DockerfileError):
        images_used("FROM scratch\nARG BASE=mine:1\nFROM $BASE\n")


@pytest.mark.parametrize("text", [
    "FROM $BASE\n",  # no value: the gateway cannot know what the engine would use
    "ARG A\nFROM ${A}\n",
    "FROM\n",
    "FROM scratch\nCOPY --from=$X / /\n",
])
def test_what_cannot_be_resolved_for_certain_is_refused(text):
    with pytest.raises(DockerfileError):
        images_used(text)


def _tar(*members: tuple[str, bytes | None, str]) -> io.BytesIO:
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


def test_every_copy_of_the_dockerfile_in_the_context_is_read():
    # The engine extracts the last of two same-named members; both are checked.
    context = _tar(("Dockerfile", b"FROM scratch\n", ""), ("./Dockerfile", b"FROM bimg:1\n", ""),
                   ("app/Dockerfile", b"FROM other\n", ""))
    assert read_dockerfiles(context, "Dockerfile") == ["FROM scratch\n", "FROM bimg:1\n"]
    assert context.tell() == 0  # rewound for forwarding
    assert read_dockerfiles(_tar(("dockerfile", b"FROM x\n", "")), "Dockerfile") == ["FROM x\n"]
    assert read_dockerfiles(_tar(("app/Dockerfile", b"FROM y\n", "")), "app/Dockerfile") == ["FROM y\n"]
    assert read_dockerfiles(_tar(("other", b"", "")), "Dockerfile") == []


def test_a_linked_dockerfile_or_a_non_tar_context_is_refused():
    with pytest.raises(PolicyDenied):
        read_dockerfiles(_tar(("evil", b"FROM bimg:1\n", ""), ("Dockerfile", None, "evil")), "Dockerfile")
    with pytest.raises(PolicyDenied):
        read_dockerfiles(io.BytesIO(b"not a tar at all" * 100), "Dockerfile")
