"""The editor tab's file endpoints on a real sandbox: open, save, conflicts, and every path attack
refused with a reason and nothing written."""

import json

import pytest
from asgiref.sync import async_to_sync

from sandbox import services
from tests.factories import csrf_post, signed_in_client


def _shell(sandbox, script: str) -> str:
    result = async_to_sync(services.run_script)(sandbox, script, timeout=20)
    assert result.exit_code == 0, result.output
    return result.output


def _open(client, sandbox, path):
    return client.get(f"/sandboxes/{sandbox.id}/files/open/", {"path": path})


def _save(client, sandbox, path, text, hash_, **extra):
    body = json.dumps({"path": path, "text": text, "hash": hash_, **extra})
    return csrf_post(client, f"/sandboxes/{sandbox.id}/files/open/", data=body, content_type="application/json")


@pytest.mark.django_db(transaction=True)
def test_open_edit_save_then_the_shell_sees_it_and_a_change_in_the_shell_is_a_conflict(owner, owners_sandbox):
    sandbox = owners_sandbox
    _shell(sandbox, "mkdir -p app && printf 'hello\\n' > app/notes.txt && chmod 600 app/notes.txt")
    client = signed_in_client(owner, enforce_csrf_checks=True)
    listed = client.get(f"/sandboxes/{sandbox.id}/files/").json()
    assert "app/notes.txt" in listed["files"] and listed["truncated"] is False
    opened = _open(client, sandbox, "app/notes.txt").json()
    assert opened["text"] == "hello\n" and opened["new"] is False

    saved = _save(client, sandbox, "app/notes.txt", "hello\n世界\n", opened["hash"])
    assert saved.status_code == 200, saved.content
    assert _shell(sandbox, "cat app/notes.txt; stat -c %a app/notes.txt; ls -a app") == "hello\n世界\n600\n.\n..\nnotes.txt\n"

    # The learner edits the file in the shell; a save from the stale copy is refused, nothing lost.
    _shell(sandbox, "echo 'from the shell' >> app/notes.txt")
    stale = _save(client, sandbox, "app/notes.txt", "editor version\n", saved.json()["hash"])
    assert stale.status_code == 409 and stale.json()["conflict"] is True
    assert "changed in the sandbox" in stale.json()["error"]
    assert _shell(sandbox, "cat app/notes.txt; ls -a app") == "hello\n世界\nfrom the shell\n.\n..\nnotes.txt\n"
    # Reload shows the shell's version; overwrite replaces it on purpose.
    assert _open(client, sandbox, "app/notes.txt").json()["hash"] == stale.json()["current_hash"]
    forced = _save(client, sandbox, "app/notes.txt", "editor version\n", saved.json()["hash"], overwrite=True)
    assert forced.status_code == 200
    assert _shell(sandbox, "cat app/notes.txt") == "editor version\n"


@pytest.mark.django_db(transaction=True)
def test_a_new_file_and_a_big_one_are_saved_whole(owner, owners_sandbox):
    sandbox = owners_sandbox
    client = signed_in_client(owner, enforce_csrf_checks=True)
    fresh = _open(client, sandbox, "Dockerfile").json()
    assert fresh == {"path": "Dockerfile", "text": "", "hash": "", "new": True}
    assert _save(client, sandbox, "Dockerfile", "FROM base\n", "").status_code == 200
    # Saving a "new" file that someone created meanwhile is a conflict too.
    assert _save(client, sandbox, "Dockerfile", "FROM other\n", "").status_code == 409
    big = "".join(f"line {n:06d} ✓\n" for n in range(15000))  # about 240 KiB: several chunks
    assert len(big.encode()) < 256 * 1024
    assert _save(client, sandbox, "big.txt", big, "").status_code == 200
    assert _shell(sandbox, "wc -c < big.txt; sha256sum big.txt | cut -d' ' -f1").split() == \
        [str(len(big.encode())), _open(client, sandbox, "big.txt").json()["hash"]]


@pytest.mark.django_db(transaction=True)
def test_paths_outside_the_home_symlinks_binary_and_huge_files_are_refused(owner, owners_sandbox):
    sandbox = owners_sandbox
    _shell(sandbox, "ln -s /etc/passwd etc-link; ln -s /etc out; head -c 300000 /dev/zero | tr '\\0' a > huge.txt;"
                    " printf 'ELF\\000\\001' > tool.bin; mkdir -p folder; echo inside > real.txt; ln -s real.txt alias.txt")
    client = signed_in_client(owner, enforce_csrf_checks=True)
    refusals = {
        "../../etc/passwd": "'..'",
        "/etc/passwd": "home folder",
        "etc-link": "outside your home",
        "out/hostname": "outside your home",
        "huge.txt": "larger than 256 KiB",
        "tool.bin": "binary",
        "folder": "not a regular file",
    }
    for path, says in refusals.items():
        answer = _open(client, sandbox, path)
        assert answer.status_code == 400 and says in answer.json()["error"], (path, answer.content)
        saved = _save(client, sandbox, path, "overwritten\n", "", overwrite=True)
        assert saved.status_code == 400, (path, saved.content)
    assert _save(client, sandbox, "x.txt", "a" * (256 * 1024 + 1), "").status_code == 400
    # Nothing was written anywhere, no temporary file was left, and /etc/passwd is untouched.
    assert "overwritten" not in _shell(sandbox, "cat /etc/passwd huge.txt real.txt")
    # (.sleeper is the lesson's own: its first step's setup starts a process and notes its PID.)
    assert [name for name in _shell(sandbox, "ls -a").split() if name != ".sleeper"] == sorted(
        [".", "..", "alias.txt", "etc-link", "folder", "huge.txt", "out", "real.txt", "tool.bin"])
    # A symlink inside the home is followed: the file it names is edited, the link stays.
    opened = _open(client, sandbox, "alias.txt").json()
    assert opened["text"] == "inside\n"
    assert _save(client, sandbox, "alias.txt", "edited\n", opened["hash"]).status_code == 200
    assert _shell(sandbox, "cat real.txt; readlink alias.txt") == "edited\nreal.txt\n"


@pytest.mark.django_db(transaction=True)
def test_only_the_owner_and_with_csrf(owner, classmate, owners_sandbox):
    sandbox = owners_sandbox
    assert signed_in_client(classmate).get(f"/sandboxes/{sandbox.id}/files/").status_code == 403
    assert _open(signed_in_client(classmate), sandbox, "x").status_code == 403
    assert _save(signed_in_client(classmate, enforce_csrf_checks=True), sandbox, "x", "y", "").status_code == 403
    assert signed_in_client().get(f"/sandboxes/{sandbox.id}/files/").status_code == 302
    no_token = signed_in_client(owner, enforce_csrf_checks=True).post(
        f"/sandboxes/{sandbox.id}/files/open/", data=json.dumps({"path": "x", "text": "y", "hash": ""}),
        content_type="application/json")
    assert no_token.status_code == 403
    assert "x" not in _shell(sandbox, "ls")


@pytest.mark.django_db(transaction=True)
def test_file_actions_are_rate_limited(owner, owners_sandbox, settings):
    settings.RATE_EDITOR_ACTIONS = "2/m"
    client = signed_in_client(owner)
    url = f"/sandboxes/{owners_sandbox.id}/files/"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.django_db(transaction=True)
def test_an_instructor_who_watches_may_not_but_one_who_took_control_may(owner, owners_sandbox, instructor, classroom):
    from classroom import consoles as classroom_consoles

    sandbox = owners_sandbox
    client = signed_in_client(instructor)
    assert client.get(f"/sandboxes/{sandbox.id}/files/").status_code == 403  # watching is read-only
    async_to_sync(classroom_consoles.take_control)(classroom, sandbox, instructor)
    assert client.get(f"/sandboxes/{sandbox.id}/files/").status_code == 200
    assert _save(signed_in_client(instructor, enforce_csrf_checks=True), sandbox, "fixed.txt", "by the instructor\n", "").status_code == 200
    assert _shell(sandbox, "cat fixed.txt") == "by the instructor\n"
