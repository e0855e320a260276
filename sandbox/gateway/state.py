"""What the engine cannot label: image names a learner made (tags), kept per sandbox on the host.

Stored under ``<DATA_DIR>/gateway-state/`` — never in the socket folder that the sandbox mounts.
A record lives as long as its sandbox, and past its end only while cleanup still has work to
retry (``ended``, ``failed``); a tag whose image went elsewhere is dropped (``prune``), or it
would keep the name from every other learner for ever.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Callable
from pathlib import Path


class TagBook:
    def __init__(self, state_dir: Path, sandbox_id: str):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / f"{sandbox_id}.json"

    @contextlib.contextmanager
    def _locked(self):
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.state_dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {"tags": []}

    def _save(self, data: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)

    def tags(self) -> set[str]:
        return set(self.load().get("tags", []))

    def remember_owner(self, owner_id: str, namespace: str) -> None:
        with self._locked():
            data = self.load()
            if data.get("owner") != owner_id:
                data.update(owner=owner_id, namespace=namespace)
                self._save(data)

    def add(self, tag: str) -> None:
        with self._locked():
            data = self.load()
            if tag not in data.setdefault("tags", []):
                data["tags"].append(tag)
                self._save(data)

    def discard(self, tag: str) -> None:
        with self._locked():
            data = self.load()
            if tag in data.get("tags", []):
                data["tags"].remove(tag)
                self._save(data)

    def held_by_other(self, tag: str) -> bool:
        """True when another sandbox's book names this tag."""
        for path in self.state_dir.glob("*.json"):
            if path == self.path:
                continue
            try:
                if tag in json.loads(path.read_text()).get("tags", []):
                    return True
            except (OSError, ValueError):
                continue
        return False

    def prune(self, present: Callable[[str], bool | None]) -> list[str]:
        """Drop the tags whose image is gone (``present`` says False; None: unknown, kept).
        ``present`` is called outside the lock (it asks the engine); returns what was dropped."""
        gone = [tag for tag in self.tags() if present(tag) is False]
        if not gone:
            return []
        with self._locked():
            data = self.load()
            kept = [tag for tag in data.get("tags", []) if tag not in gone]
            if kept != data.get("tags", []) and self.path.exists():
                data["tags"] = kept
                self._save(data)
        return gone

    def mark_ended(self, failed: list[str], now: float) -> None:
        """The sandbox ended but cleanup could not finish: keep the record for a retry
        (``ended`` is the time of the last attempt)."""
        with self._locked():
            data = self.load()
            data["ended"] = now
            data["failed"] = list(failed)
            self._save(data)

    def clear_ended(self) -> None:
        """The sandbox is back (started again under the same id): nothing to retry."""
        with self._locked():
            data = self.load()
            if "ended" in data and self.path.exists():
                data.pop("ended")
                data.pop("failed", None)
                self._save(data)

    @classmethod
    def sandbox_ids(cls, state_dir: Path) -> list[str]:
        """Every sandbox with a record."""
        return sorted(path.stem for path in Path(state_dir).glob("*.json"))

    def delete(self) -> None:
        with self._locked():
            self.path.unlink(missing_ok=True)
