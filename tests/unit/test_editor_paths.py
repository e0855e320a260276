"""The editor's path and text rules, checked before the engine is asked anything."""

import pytest

from sandbox.editor_files import (CHUNK_BYTES, FileRefused, begin_save_script, chunk_script, clean_path, decode_text,
                                   finish_save_script, whole_save_script)


@pytest.mark.parametrize("path, expected", [
    ("notes.txt", "notes.txt"),
    ("./app/main.py", "app/main.py"),
    ("~/app//Dockerfile", "app/Dockerfile"),
    ("/home/learner/app/Dockerfile", "app/Dockerfile"),
    ("名字.md", "名字.md"),
])
def test_paths_in_the_home_are_made_relative(path, expected):
    assert clean_path(path) == expected


@pytest.mark.parametrize("path, says", [
    ("../etc/passwd", ".."),
    ("app/../../etc/passwd", ".."),
    ("/etc/passwd", "home folder"),
    ("/home/learnerx/file", "home folder"),
    ("/home/learner", "home folder itself"),
    ("", "Name a file"),
    ("a\nb", "control characters"),
    ("x" * 2000, "longer than"),
])
def test_paths_leaving_the_home_are_refused_with_a_reason(path, says):
    with pytest.raises(FileRefused, match=says):
        clean_path(path)


def test_binary_and_non_utf8_text_are_refused():
    assert decode_text("héllo\n".encode()) == "héllo\n"
    with pytest.raises(FileRefused, match="binary"):
        decode_text(b"ELF\x00\x01")
    with pytest.raises(FileRefused, match="UTF-8"):
        decode_text(b"\xff\xfe caf\xe9")


def test_every_save_script_stays_under_the_kernels_single_argument_limit():
    # run() passes the script as one argument; Linux refuses one over 128 KiB (MAX_ARG_STRLEN).
    chunk, path, part = b"\xe4\xbd\xa0" * (CHUNK_BYTES // 3), "a/" * 300 + "f", "/home/learner/.tutorial-edit.x"
    assert CHUNK_BYTES % 3 == 0  # each chunk's base64 stands alone
    for script in (whole_save_script(path, chunk, "0" * 64), begin_save_script(path, chunk),
                   chunk_script(part, chunk), finish_save_script(path, part, chunk, "0" * 64)):
        assert len(script.encode()) < 128 * 1024
