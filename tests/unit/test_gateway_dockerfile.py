"""A learner's Dockerfile read as the classic builder reads it, and the one the gateway writes (no engine)."""

from __future__ import annotations

import io
import tarfile

import pytest

from sandbox.gateway import build
from sandbox.gateway.dockerfile import DockerfileError, images_used, parse, plan
from sandbox.gateway.policy import PolicyDenied

REG = "127.0.0.1:5000/library"
LABELS = {"tutorial.sandbox": "s-1", "tutorial.gateway": "learner"}


@pytest.mark.parametrize("text, used", [
    (f"FROM {REG}/busybox\nRUN true\n", [f"{REG}/busybox"]),
    ("from bimg:1\n", ["bimg:1"]),  # instructions are case-insensitive
    ("FROM scratch\nCOPY x /\n", []),
    (f"FROM {REG}/busybox AS build\nRUN make\nFROM build\nFROM Build AS again\n", [f"{REG}/busybox"]),
    (f"FROM {REG}/busybox AS build\nFROM scratch\nCOPY --from=build /a /a\nCOPY --from=0 /b /b\n", [f"{REG}/busybox"]),
    ("FROM scratch\nCOPY --chown=1:1 --from=bimg:1 /secret /\n", ["bimg:1"]),
    ("FROM scratch\nONBUILD COPY --from=bimg:1 /secret /\n", ["bimg:1"]),
    ("ARG BASE=mine:1\nFROM $BASE\n", ["mine:1"]),
    ("ARG BASE=mine:1\nFROM ${BASE}\n", ["mine:1"]),
    ("ARG BASE\nFROM ${BASE:-mine:2}\n", ["mine:2"]),
    ('ARG BASE="mine:3"\nFROM $BASE\n', ["mine:3"]),
    ("ARG A=mine\nARG B=${A}:4\nFROM $B\n", ["mine:4"]),  # a meta ARG default sees the ARGs before it
    ("# a comment\n\nFROM \\\n  bimg:1 \\\n  AS x\n", ["bimg:1"]),
    ("FROM \\\n# comment between continuation lines\n  bimg:1\n", ["bimg:1"]),
    ("# escape=`\nFROM `\n  bimg:1\n", ["bimg:1"]),
    ("FROM scratch\r\nCOPY --from=bimg:1 / /\r\n", ["bimg:1"]),
    # Every separator the engine's tokenWhitespace accepts between instruction and arguments.
    ("FROM\tbimg:1\nRUN cat /secret\n", ["bimg:1"]),
    ("FROM\x0bbimg:1\n", ["bimg:1"]),
    ("FROM\x0cbimg:1\n", ["bimg:1"]),
    ("FROM \t bimg:1\n", ["bimg:1"]),
    ("\ufeffFROM bimg:1\n", ["bimg:1"]),  # a byte-order mark on the first line is dropped
    ("\u00a0\u2003FROM bimg:1\n", ["bimg:1"]),  # Go's unicode.IsSpace is trimmed in front
    ("FROM scratch\nCOPY\t--from=bimg:1 /secret /\n", ["bimg:1"]),
    ("FROM scratch\nCOPY --chown=1\t--from=bimg:1 /secret /\n", ["bimg:1"]),
    # A stage is only found by name once it is complete: in its own stage it names an image.
    ("FROM scratch AS bimg\nCOPY --from=bimg /secret /\n", ["bimg"]),
    ("FROM scratch\nFROM bimg AS bimg\n", ["bimg"]),
    # Proxy build arguments reach FROM without an ARG.
    ("FROM ${HTTP_PROXY:-scratch}\n", []),
])
def test_every_image_the_builder_would_resolve_is_found(text, used):
    assert images_used(text) == used


def test_build_args_override_arg_defaults():
    assert images_used("ARG BASE=mine:1\nFROM $BASE\n", {"BASE": "bimg:1"}) == ["bimg:1"]
    assert images_used("ARG BASE\nFROM $BASE\n", {"BASE": "bimg:1"}) == ["bimg:1"]
    assert images_used("FROM ${HTTP_PROXY:-scratch}\n", {"HTTP_PROXY": "bimg:1"}) == ["bimg:1"]
    assert images_used("FROM ${OTHER:-scratch}\n", {"OTHER": "bimg:1"}) == []  # not declared: not a meta ARG


def test_an_arg_after_from_does_not_feed_a_later_from():
    with pytest.raises(DockerfileError):
        images_used("FROM scratch\nARG BASE=mine:1\nFROM $BASE\n")


@pytest.mark.parametrize("text, why", [
    ("FROM $BASE\n", "no value"),  # the gateway cannot know what the engine would use
    ("ARG A\nFROM ${A}\n", "no value"),
    ("FROM\n", "FROM IMAGE"),
    ("FROM scratch\nCOPY --from=$X / /\n", "without variables"),
    ('FROM "bimg:1"\n', "quotes"),
    ("FROM bimg\\:1\n", "quotes, escapes"),
    ("ARG B='a'b\nFROM $B\n", "cannot read"),
    ("FROM\u00a0bimg:1\n", "unknown instruction"),  # NBSP is not a separator: the engine refuses it too
    ("\ufeff\ufeffFROM bimg:1\n", "unknown instruction"),
    ("FROM scratch\nRUN --mount=from=bimg:1,target=/m cat /m/b\n", "BuildKit"),
    ("FROM scratch\nRUN --mount=type=bind,from=bimg:1,target=/m cat /m/b\n", "BuildKit"),
    ("FROM scratch\nCOPY --fr\\om=bimg:1 / /\n", "without quotes"),
    ("FROM scratch\nCOPY -- --from=bimg:1 / /\n", "start with --"),
    ("FROM scratch\nCOPY --from=a --from=b / /\n", "twice"),
    ("FROM --platform=linux/amd64 bimg:1\n", "not allowed"),
    ("FROM scratch\nRUN <<EOF\ncat /b\nEOF\n", "heredocs"),
    ("FROM scratch\nCOPY <<EOF /x\nhi\nEOF\n", "heredocs"),
    ("FROM scratch\nCOPY --from=3 / /\n", "not a stage before"),
    ("FROM scratch AS a\nFROM scratch AS A\n", "twice"),
    ("FROM scratch AS 1a\n", "invalid stage name"),
    ("# syntax=docker/dockerfile:1\n# escape=`\nFROM bimg:1\n", "escape"),
    ("# escape=x\nFROM scratch\n", "invalid escape"),
    ("RUN true\nFROM scratch\n", "first instruction"),
    ("FROM scratch\nONBUILD ONBUILD RUN x\n", "ONBUILD"),
    ("FROM scratch\nLABEL tutorial.sandbox=someone-else\n", "not yours"),
    ('FROM scratch\nLABEL "Tutorial.owner"=1\n', "not yours"),
    ("FROM scratch\nLABEL ${X}=1\n", "not yours"),
    ("FROM scratch\nRUN echo \\\\\n", "escape character"),  # written back, it would swallow the next line
    ("FROM scratch\nUNKNOWN x\n", "unknown instruction"),
    (b"FROM \xff\n", "UTF-8"),
])
def test_what_cannot_be_read_for_certain_is_refused(text, why):
    with pytest.raises(DockerfileError, match=why):
        plan(text)


@pytest.mark.parametrize("add", [
    "http://127.0.0.1:5000/v2/_catalog /c",
    "https://example.org/x /x",
    "HTTP://127.0.0.1/ /x",
    "--chown=1:1 http://127.0.0.1/ /x",
    "--chmod=644 http://127.0.0.1/ /x",
    '["http://127.0.0.1:5000/v2/_catalog", "/c"]',
    "git@github.com:moby/moby.git /src",
    "git://127.0.0.1/repo /src",
    "a ftp://127.0.0.1/x /dst/",
])
def test_add_of_a_url_is_refused_by_classroom_policy(add):
    with pytest.raises(DockerfileError, match="ADD of a URL is not allowed by classroom policy"):
        plan(f"FROM scratch\nADD {add}\n")


@pytest.mark.parametrize("add", ["h\\ttp://127.0.0.1/ /x", "$U /x", '"http"://x /y', "--checksum=sha256:00 http://x /y"])
def test_add_sources_the_engine_would_rewrite_are_refused(add):
    with pytest.raises(DockerfileError):
        plan(f"FROM scratch\nADD {add}\n")


def test_the_images_looked_up_are_bounded():
    with pytest.raises(DockerfileError, match="more than"):
        plan("".join(f"FROM img{i}\n" for i in range(40)))


def test_local_add_and_copy_stay_allowed():
    assert plan("FROM scratch\nADD --chown=1:1 app.tar.gz /app/\nCOPY --chmod=644 a b /c/\n").images == []


def test_the_written_dockerfile_is_canonical_and_pinned():
    text = ("\ufeff# escape=`\n# a comment\nARG B=bimg:1\nFROM\t$B  AS\x0bBuild\nRUN echo a `\n  # inside\n  b\n"
            "COPY\t--chown=1:1 --from=0x /a /a\nFROM scratch\nCOPY --from=BUILD /a /b\nCOPY --from=0 /c /d\n")
    p = plan(text)
    assert p.images == ["bimg:1", "0x"]
    assert p.render(LABELS, {"bimg:1": "sha256:abc"}) == (
        "# escape=`\n"
        "ARG B=bimg:1\n"
        "FROM sha256:abc AS build\n"
        "LABEL tutorial.sandbox=s-1 tutorial.gateway=learner\n"
        "RUN echo a   b\n"
        "COPY --chown=1:1 --from=0x /a /a\n"
        "FROM scratch\n"
        "LABEL tutorial.sandbox=s-1 tutorial.gateway=learner\n"
        "COPY --from=0 /a /b\n"
        "COPY --from=0 /c /d\n")


def test_the_written_dockerfile_reads_back_as_the_same_instructions():
    text = "FROM scratch AS a\nONBUILD COPY --from=x:1 / /\nENV A=1 \\\n  B=2\nCMD [\"sh\"]\nHEALTHCHECK --interval=5s CMD true\n"
    p = plan(text)
    again = parse(p.render({}))
    assert [(i.keyword, i.flags, i.args, i.sub) for i in again.instructions] == [
        (i.keyword, i.flags, i.args, i.sub) for i in p.dockerfile.instructions]
    assert plan(again).images == p.images


def test_onbuild_triggers_of_a_base_are_checked_against_the_stages_done_by_then():
    p = plan("FROM scratch AS a\nFROM base:1\n")
    assert p.trigger_images({"base:1": ["COPY --from=bimg:1 /b /b", "COPY --from=a /x /y", "RUN true"]}) == ["bimg:1"]
    with pytest.raises(DockerfileError, match="URL"):
        p.trigger_images({"base:1": ["ADD http://127.0.0.1:5000/v2/_catalog /c"]})
    with pytest.raises(DockerfileError, match="cannot read"):
        p.trigger_images({"base:1": ["RUN a\nRUN b"]})


# -- the build context --------------------------------------------------------------------------
def _tar(*members: tuple[str, bytes | None, str], kind: bytes = tarfile.SYMTYPE) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = kind, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def test_the_dockerfile_the_engine_would_extract_is_read():
    # The engine extracts the last of two same-named members.
    context = _tar(("Dockerfile", b"FROM scratch\n", ""), ("./Dockerfile", b"FROM bimg:1\n", ""),
                   ("app/Dockerfile", b"FROM other\n", ""))
    assert build.read_dockerfile(context, "Dockerfile") == ("Dockerfile", b"FROM bimg:1\n")
    assert context.tell() == 0  # rewound
    assert build.read_dockerfile(_tar(("dockerfile", b"FROM x\n", "")), "Dockerfile") == ("dockerfile", b"FROM x\n")
    assert build.read_dockerfile(_tar(("app", None, ""), ("app/Dockerfile", b"FROM y\n", "")),
                                 "./app//Dockerfile") == ("app/Dockerfile", b"FROM y\n")
    with pytest.raises(PolicyDenied, match="Cannot locate"):
        build.read_dockerfile(_tar(("other", b"", "")), "Dockerfile")


@pytest.mark.parametrize("members, name", [
    ((("evil", b"FROM bimg:1\n", ""), ("Dockerfile", None, "evil")), "Dockerfile"),
    ((("sub", None, "."), ("Dockerfile", b"FROM bimg:1\n", "")), "sub/Dockerfile"),  # a linked folder
    ((("a", None, ""), ("a/sub", None, "/"), ("a/sub/Dockerfile", b"FROM x\n", "")), "a/sub/Dockerfile"),
    ((("Dockerfile", None, ""),), "Dockerfile"),
    ((("Dockerfile", b"x", ""),), "../Dockerfile"),
    ((("Dockerfile", b"x", ""),), "/Dockerfile"),
])
def test_a_linked_or_escaping_dockerfile_is_refused(members, name):
    with pytest.raises(PolicyDenied):
        build.read_dockerfile(_tar(*members), name)


def test_a_hard_linked_dockerfile_is_refused():
    context = _tar(("evil", b"FROM bimg:1\n", ""), ("Dockerfile", None, "evil"), kind=tarfile.LNKTYPE)
    with pytest.raises(PolicyDenied):
        build.read_dockerfile(context, "Dockerfile")


def test_a_context_without_end_blocks_as_the_cli_sends_for_a_stdin_dockerfile_is_read():
    whole = _tar(("app", None, ""), ("Dockerfile", b"FROM x\n", "")).getvalue()
    cut = io.BytesIO(whole[:512 * 3 + 7])  # the last member's data unpadded, no end-of-archive blocks
    assert build.read_dockerfile(cut, "Dockerfile") == ("Dockerfile", b"FROM x\n")
    out = io.BytesIO()
    build.rewrite_context(cut, "FROM x\n", out)
    assert _members(out)["Dockerfile"] == b"FROM x\n"
    gz = io.BytesIO()
    with tarfile.open(fileobj=gz, mode="w:gz") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"FROM y\n"))
    gz.seek(0)
    assert build.read_dockerfile(gz, "Dockerfile") == ("Dockerfile", b"FROM y\n")


def test_a_non_tar_context_is_refused():
    with pytest.raises(PolicyDenied):
        build.read_dockerfile(io.BytesIO(b"not a tar at all" * 100), "Dockerfile")


def _members(out) -> dict[str, bytes | None]:
    with tarfile.open(fileobj=out, mode="r") as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else None) for m in tar}


def test_the_context_sent_holds_the_gateways_dockerfile_and_keeps_the_rest():
    context = _tar(("app", None, ""), ("app/main.sh", b"echo hi\n", ""), ("link", None, "app/main.sh"),
                   ("Dockerfile", b"FROM\tbimg:1\n", ""))
    out = io.BytesIO()
    size = build.rewrite_context(context, "FROM sha256:abc\n", out)
    assert size == len(out.getvalue()) and out.tell() == 0
    members = _members(out)
    assert members[build.DOCKERFILE] == b"FROM sha256:abc\n"
    assert members["app/main.sh"] == b"echo hi\n" and "link" in members and members["Dockerfile"] == b"FROM\tbimg:1\n"
    # No learner .dockerignore: this one drops itself and the gateway's Dockerfile after the engine reads them.
    assert members[".dockerignore"] == f".dockerignore\n{build.DOCKERFILE}\n".encode()


def test_a_learners_dockerignore_is_kept_and_cannot_hide_or_keep_the_gateways_dockerfile():
    context = _tar((".dockerignore", b"*.log\n!" + build.DOCKERFILE.encode() + b"\n", ""), ("Dockerfile", b"FROM x\n", ""))
    out = io.BytesIO()
    build.rewrite_context(context, "FROM x\n", out)
    assert _members(out)[".dockerignore"] == b"*.log\n!" + build.DOCKERFILE.encode() + b"\n" + build.DOCKERFILE.encode() + b"\n"


@pytest.mark.parametrize("members", [
    ((build.DOCKERFILE, b"FROM bimg:1\n", ""),),
    ((build.DOCKERFILE, None, "Dockerfile"),),
    (("./" + build.DOCKERFILE + "/x", b"", ""),),
    ((".dockerignore", None, "elsewhere"),),
])
def test_a_learner_cannot_take_the_gateways_names(members):
    with pytest.raises(PolicyDenied):
        build.rewrite_context(_tar(*members), "FROM x\n", io.BytesIO())


@pytest.mark.parametrize("patterns, path, dropped", [
    (b"Dockerfile\n", "Dockerfile", True),
    (b"# Dockerfile\n", "Dockerfile", False),
    (b"*\n!src\n", "Dockerfile", True),
    (b"*\n!Dockerfile\n", "Dockerfile", False),
    (b"\xef\xbb\xbf/Docker*\n", "Dockerfile", True),
    (b"**/Dockerfile\n", "app/Dockerfile", True),
    (b"app\n", "app/Dockerfile", True),  # a folder pattern covers what is inside
    (b"app/*.txt\n", "app/Dockerfile", False),
    (b"Docker?ile\n", "Dockerfile", True),
    (b"Docker[ef]ile\n", "Dockerfile", True),
])
def test_the_learners_dockerfile_is_dropped_when_their_dockerignore_matches_it(patterns, path, dropped):
    context = _tar((".dockerignore", patterns, ""), ("app", None, ""), (path, b"FROM x\n", ""))
    out = io.BytesIO()
    build.rewrite_context(context, "FROM x\n", out, path)
    assert (path not in _members(out)) == dropped
