"""The install id (TUTORIAL_INSTALL_ID) and who owns an engine object: a fresh site gets a stable
id with nothing configured, two sites with their own databases get different ones, and an object
is an install's by its label, or, from before labels, by a row in its database.

Settings are module-level, so each case loads them in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sandbox.backends.base import LABEL_INSTALL, LABEL_SANDBOX, belongs_to_install

REPO = Path(__file__).resolve().parents[2]


def install_id(data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "TUTORIAL_")) and k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.update({"TUTORIAL_DATA_DIR": str(data_dir), **env})
    return subprocess.run([sys.executable, "-c", "from tutorial import settings; print(settings.INSTALL_ID)"],
                          cwd=REPO, env=clean, capture_output=True, text=True, timeout=60)


def test_a_fresh_site_gets_an_id_that_is_kept_and_stays_the_same(tmp_path):
    first = install_id(tmp_path / "a")
    assert first.returncode == 0, first.stderr
    made = first.stdout.strip()
    assert made and (tmp_path / "a" / "install_id").read_text().strip() == made
    assert install_id(tmp_path / "a").stdout.strip() == made
    # Another data folder (its own SQLite database) is another install.
    assert install_id(tmp_path / "b").stdout.strip() not in ("", made)


def test_every_process_of_one_site_agrees_without_a_shared_file(tmp_path):
    # Processes on different machines share the database, not the data folder.
    url = "postgres://tutorial:x@db.example:5432/tutorial"
    one = install_id(tmp_path / "web", DATABASE_URL=url).stdout.strip()
    assert one and install_id(tmp_path / "reaper", DATABASE_URL=url).stdout.strip() == one


def test_a_configured_id_wins_and_a_malformed_one_is_refused(tmp_path):
    assert install_id(tmp_path, TUTORIAL_INSTALL_ID="classroom-1").stdout.strip() == "classroom-1"
    refused = install_id(tmp_path, TUTORIAL_INSTALL_ID="Class Room/1")
    assert refused.returncode != 0 and "TUTORIAL_INSTALL_ID" in refused.stderr


def test_an_object_is_an_installs_by_its_label_or_by_a_row_of_its_sandbox():
    sandbox = "0b7c3a52-5d7e-4f43-a3a4-1f0f7a3b9c11"
    assert belongs_to_install({LABEL_SANDBOX: sandbox, LABEL_INSTALL: "a"}, "a")
    assert not belongs_to_install({LABEL_SANDBOX: sandbox, LABEL_INSTALL: "b"}, "a", {sandbox})
    # From before install labels: only with a row of this install's database.
    assert belongs_to_install({LABEL_SANDBOX: sandbox}, "a", {sandbox})
    assert not belongs_to_install({LABEL_SANDBOX: sandbox}, "a", set())
