"""``python -m cluster up|build|start|stop|restart [component]|reset|status``: the local cluster."""

from __future__ import annotations

import argparse
import json
import sys

from .build import BuildError
from .control import Cluster, ClusterError
from .node import NodeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster", description=__doc__)
    parser.add_argument("verb", choices=["up", "build", "start", "stop", "restart", "reset", "status"])
    parser.add_argument("component", nargs="?", help="restart only this part (kubelet, kube-apiserver, ...)")
    args = parser.parse_args(argv)
    cluster = Cluster()
    try:
        if args.verb in ("up", "start"):
            cluster.up()
        elif args.verb == "build":
            cluster.build()
        elif args.verb == "stop":
            cluster.stop()
        elif args.verb == "restart":
            cluster.restart(args.component)
        elif args.verb == "reset":
            cluster.reset()
        else:
            print(json.dumps(cluster.describe(), indent=2))
    except (ClusterError, BuildError, NodeError, RuntimeError, ValueError) as exc:
        print(f"cluster {args.verb}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
