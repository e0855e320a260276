"""The libraries a Debian program carries into a lesson image come from its ELF headers: all of
them (a missing one fails the build with its name, never a program that cannot start in the
sandbox), and never the loader, which has a place of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox.images.build import copy_libraries
from sandbox.images.elf import ElfError, library_closure, read_dynamic
from sandbox.images.recipes import LIB_DIRS, RECIPES

CURL, JQ, STATIC_BASH = Path("/usr/bin/curl"), Path("/usr/bin/jq"), Path("/bin/bash-static")


def test_curl_needs_libcurl_its_tls_and_glibc_but_not_the_loader_among_them():
    closure = library_closure(CURL, LIB_DIRS)
    assert {"libcurl.so.4", "libssl.so.3", "libcrypto.so.3", "libz.so.1", "libc.so.6"} <= set(closure)
    assert not any(name.startswith("ld-linux") for name in closure)
    assert all(path.is_file() for path in closure.values())
    assert read_dynamic(CURL.read_bytes()).interpreter == "/lib64/ld-linux-x86-64.so.2"


def test_a_static_program_needs_nothing():
    assert read_dynamic(STATIC_BASH.read_bytes()).needed == ()
    assert library_closure(STATIC_BASH, LIB_DIRS) == {}


def test_a_library_found_nowhere_is_named(tmp_path):
    with pytest.raises(ElfError, match=r"libjq\.so\.1 \(needed by /usr/bin/jq\)"):
        library_closure(JQ, (str(tmp_path),))


def test_a_file_that_is_not_elf_is_refused(tmp_path):
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(ElfError, match="not an ELF file"):
        library_closure(script, LIB_DIRS)


def test_the_base_context_gets_every_library_jq_and_curl_load_once(tmp_path):
    recipe = RECIPES["base"]
    for program in recipe.with_libraries:
        shutil.copy2(recipe.host_files[program][0], tmp_path / program)
    sonames = copy_libraries(recipe, tmp_path)
    expected = set(library_closure(JQ, LIB_DIRS)) | set(library_closure(CURL, LIB_DIRS))
    assert sorted(sonames) == sorted(expected)
    assert {path.name for path in (tmp_path / "lib").iterdir()} == expected
    assert not any(path.is_symlink() for path in (tmp_path / "lib").iterdir())


def test_the_docker_cli_image_adds_no_library_the_base_lacks():
    # The docker image copies only the CLI onto the base: whatever it loads must already be there.
    base = set(library_closure(JQ, LIB_DIRS)) | set(library_closure(CURL, LIB_DIRS))
    assert set(library_closure(Path(RECIPES["docker"].host_files["docker"][0]), LIB_DIRS)) <= base
