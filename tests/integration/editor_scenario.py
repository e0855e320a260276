"""What the editor tab does, on any workspace whose console ``run`` works: the same scenario for
Docker ``plain`` and ``docker`` (tests/integration) and the Kubernetes toolbox (tests/kubernetes)."""

from __future__ import annotations

import pytest

from sandbox import editor_files


async def save_edit_in_the_shell_and_conflict(backend, ref: str) -> None:
    async def shell(script: str) -> str:
        result = await backend.run(ref, script, timeout=30)
        assert result.exit_code == 0, result.output
        return result.output

    # A new file, saved from the editor, is what the shell reads, with no temporary file left.
    await shell("mkdir -p app")
    opened = await editor_files.read_file(backend, ref, "app/Dockerfile")
    assert opened["new"] and opened["hash"] == ""
    first = await editor_files.save_file(backend, ref, "app/Dockerfile", "FROM base\nRUN echo 你好\n", opened["hash"])
    assert await shell("cat app/Dockerfile; ls -A app") == "FROM base\nRUN echo 你好\nDockerfile\n"
    assert "app/Dockerfile" in (await editor_files.list_files(backend, ref))[0]

    # The learner edits it in the shell; the editor's stale save is refused and changes nothing.
    await shell("echo 'CMD [\"sh\"]' >> app/Dockerfile")
    with pytest.raises(editor_files.Conflict) as conflict:
        await editor_files.save_file(backend, ref, "app/Dockerfile", "FROM stale\n", first)
    assert await shell("cat app/Dockerfile") == 'FROM base\nRUN echo 你好\nCMD ["sh"]\n'
    reloaded = await editor_files.read_file(backend, ref, "app/Dockerfile")
    assert reloaded["hash"] == conflict.value.current_hash
    # Saved from the reloaded copy, it goes through.
    await editor_files.save_file(backend, ref, "app/Dockerfile", reloaded["text"] + "EXPOSE 80\n", reloaded["hash"])
    assert (await shell("tail -n 1 app/Dockerfile; ls -A app")) == "EXPOSE 80\nDockerfile\n"

    # Outside the home, through a symlink: refused, with nothing written.
    await shell("ln -sf /etc/hostname app/host")
    for path in ("app/host", "../../etc/hostname", "/etc/hostname"):
        with pytest.raises(editor_files.FileRefused):
            await editor_files.read_file(backend, ref, path)
        with pytest.raises(editor_files.FileRefused):
            await editor_files.save_file(backend, ref, path, "owned\n", None)
    assert "owned" not in await shell("cat /etc/hostname")
