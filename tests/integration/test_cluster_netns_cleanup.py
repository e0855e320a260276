"""The local cluster's stop removes its pods' network namespace files even when they are hidden.

The first `ip netns add` on a machine (the NetworkPolicy tests make namespaces with it) turns
/run/netns into a bind mount of itself; a namespace the CNI plugin had mounted there before is then
hidden under that bind, so a plain umount says "not mounted" and unlink says "busy". A stop that
gave up there left the node unable to start again (it failed a whole CI run)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from cluster import node

pytestmark = pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="needs root (mounts)")


def test_a_pod_netns_hidden_under_the_ip_netns_bind_is_still_removed(tmp_path):
    # A folder of the test's own stands for /run/netns (the cluster's pods keep theirs untouched).
    netns = tmp_path / "netns"
    netns.mkdir()
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    entry = netns / f"cni-test-{uuid.uuid4()}"
    try:
        entry.touch()
        # As the CNI plugin does: the namespace kept by a bind mount of its nsfs file.
        for _ in range(50):
            if os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            subprocess.run(["sleep", "0.1"], check=True)
        subprocess.run(["mount", "--bind", f"/proc/{holder.pid}/ns/net", str(entry)], check=True)
        # As `ip netns add` does the first time: /run/netns bound on itself, hiding the mount.
        subprocess.run(["mount", "--bind", str(netns), str(netns)], check=True)
        with pytest.raises(OSError):
            entry.unlink()

        node._remove_netns_file(entry)

        assert not entry.exists()
    finally:
        holder.kill()
        holder.wait()
        for path in (entry, netns, entry):
            subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
        entry.unlink(missing_ok=True)
