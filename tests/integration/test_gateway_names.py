"""Two learners doing the same lesson at once: each has its own `site`, `notes` and `appnet` on the
one shared engine, sees only its own names, and reaches its own containers by them."""

from __future__ import annotations

import re
import time

import pytest

from sandbox.gateway.names import Names

from .gateway_helpers import blocks, gateway_images, start_workspace  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]
BUSYBOX = "127.0.0.1:5000/library/busybox"


def lesson(page: str) -> str:
    return (
        "docker network create appnet && docker volume create notes"
        f" && docker run --rm -v notes:/www {BUSYBOX} sh -c 'echo {page} > /www/index.html'"
        f" && docker run -d --name site --network appnet -v notes:/www:ro {BUSYBOX} httpd -f -p 8080 -h /www"
        " && echo LESSON-DONE")


def views(since: int) -> str:
    fmt = ("{{.Name}} {{range $k, $_ := .NetworkSettings.Networks}}{{$k}}{{end}} "
           "{{range .Mounts}}{{.Name}}{{end}} {{.HostConfig.NetworkMode}} {{.HostConfig.Binds}}")
    checks = {
        "fetch": f"docker run --rm --name client --network appnet {BUSYBOX} sh -c "
                 "'for i in 1 2 3 4 5; do timeout 5 wget -qO- http://site:8080/ && exit 0; sleep 1; done; exit 1'",
        "ps": "docker ps -a --format '{{.Names}} {{.Networks}} {{.Mounts}}'",
        "ps filter": "docker ps -a --filter name=^site$ --format '{{.Names}}'",
        "ps filters": "docker ps -a --filter name=nothing --filter name=/sit -n 1 --format '{{.Names}}'",
        "ps network": "docker ps -a --filter network=appnet --filter volume=notes --format '{{.Names}}'",
        "inspect": f"docker inspect -f '{fmt}' site",
        "volumes": "docker volume ls --format '{{.Name}}'",
        "volume inspect": "docker volume inspect -f '{{.Name}} {{.Mountpoint}}' notes",
        "networks": "docker network ls --format '{{.Name}}'",
        "network inspect": "docker network inspect -f '{{.Name}} {{range .Containers}}{{.Name}}{{end}}' appnet",
        "taken": f"docker run -d --name site {BUSYBOX} true",
        "stats": "docker stats --no-stream --format '{{.Name}}' site",
        "stats stream": "(timeout 4 docker stats --format ' N={{.Name}} ' site | head -c 3000 | tr -c 'a-zA-Z0-9_=\\n' ' ')"
                        " 2>/dev/null",
        "events": f"docker events --since {since} --until $(($(date +%s) + 1)) --filter container=site"
                  " --filter event=start --format '{{.Actor.Attributes.name}} {{.Type}} {{.Action}}'",
    }
    return "; ".join(f'echo "== {k}"; {v} 2>&1; echo "rc=$?"' for k, v in checks.items())


async def test_two_learners_each_have_their_own_site_notes_and_appnet(gateway_images, labelled_leftovers):
    a, b = await start_workspace(), await start_workspace()
    since = int(time.time()) - 1
    try:
        for ws, page in ((a, "page-of-a"), (b, "page-of-b")):
            done = await ws.sh(lesson(page))
            assert done.exit_code == 0 and "LESSON-DONE" in done.output, done.output
        for ws, page, other in ((a, "page-of-a", b), (b, "page-of-b", a)):
            found = blocks(await ws.out(views(since), timeout=150))
            scoped = Names(ws.id).prefix
            # Reached by the learner's name on the learner's network: their own page.
            assert page in found["fetch"] and "rc=0" in found["fetch"], found["fetch"]
            assert Names(other.id).prefix not in "".join(found.values())
            assert scoped not in "".join(found.values()), found
            assert found["ps"].splitlines()[0] == "site appnet notes", found["ps"]
            assert found["ps filter"].split() == ["site", "rc=0"], found["ps filter"]
            assert found["ps filters"].split() == ["site", "rc=0"], found["ps filters"]
            assert found["ps network"].split() == ["site", "rc=0"], found["ps network"]
            assert found["inspect"].splitlines()[0] == "/site appnet notes appnet [notes:/www:ro]", found["inspect"]
            assert found["volumes"].split() == ["notes", "rc=0"], found["volumes"]
            assert found["volume inspect"].startswith("notes /"), found["volume inspect"]
            assert "appnet" in found["networks"].split(), found["networks"]
            assert found["network inspect"].splitlines()[0] == "appnet site", found["network inspect"]
            assert 'the container name "site" is already in use' in found["taken"], found["taken"]
            assert found["stats"].split() == ["site", "rc=0"], found["stats"]
            assert set(re.findall(r"N=(\w+)", found["stats stream"])) == {"site"}, found["stats stream"]
            assert found["events"].split() == ["site", "container", "start", "rc=0"], found["events"]

        # B cannot address A's objects: not by A's names (those are B's own), not by the engine's.
        a_id = (await a.out("docker inspect -f '{{.Id}}' site")).strip()
        engine = Names(a.id)
        attempts = {
            "container": f"docker inspect {engine.engine('site')}",
            "container id": f"docker logs {a_id[:12]}",
            "exec": f"docker exec {engine.engine('site')} true",
            "stop": f"docker stop {engine.engine('site')}",
            "network": f"docker network inspect {engine.engine('appnet')}",
            "network run": f"docker run --rm --network {engine.engine('appnet')} {BUSYBOX} true",
            "network connect": f"docker network connect {engine.engine('appnet')} site",
            "volume": f"docker volume inspect {engine.engine('notes')}",
            "volume rm": f"docker volume rm {engine.engine('notes')}",
            "own site": "docker inspect -f '{{.Id}}' site",
        }
        found = blocks(await b.out("; ".join(f'echo "== {k}"; {v} 2>&1; echo "rc=$?"'
                                             for k, v in attempts.items()), timeout=150))
        for name in ("container", "container id", "exec", "stop", "network", "network run",
                     "network connect", "volume", "volume rm"):
            text = found[name].lower()
            assert ("no such" in text or "not found" in text) and "rc=0" not in text, f"{name}: {found[name]}"
        assert a_id not in found["own site"]
        # A's things are untouched, and still A's.
        still = blocks(await a.out(
            "echo '== ps'; docker ps --format '{{.Names}}'; echo '== vol'; docker volume ls -q;"
            " echo '== net'; docker network ls --format '{{.Name}}'"))
        assert still["ps"].split() == ["site"] and still["vol"].split() == ["notes"], still
        assert "appnet" in still["net"].split(), still
    finally:
        await a.backend.destroy(a.id)
        await b.backend.destroy(b.id)
    assert labelled_leftovers(a.id) == [] and labelled_leftovers(b.id) == []
