#!/usr/bin/env python3
"""Serve the site with several daphne processes on one port, one listening socket each.

One daphne runs Python on one core: a class pressing Start together queues behind it while the
machine's other cores idle. Each daphne process gets a listening socket of its own, all bound to
the same address with SO_REUSEPORT (``daphne --fd``), and the kernel spreads new connections over
them by a hash of the client's address and port. One socket shared by every process would not
spread them: each wakes for every connection and the first awake accepts the whole queue, so a
class connecting at once lands on one process (measured: 19 of 20 consoles) while the others idle.

Several processes need a channel layer they share (``REDIS_URL``): sandbox events, notices and
the dashboard cross processes. Without it this serves with one process and says so.

    scripts/serve.py --host 127.0.0.1 --port 8000 --processes 2 [-- extra daphne arguments]

A process that dies is started again (a second later); one that dies within seconds of its start
five times in a row stops the server, since something is broken that a restart will not mend.
SIGTERM or SIGINT stops every process and waits for them.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

APPLICATION = "tutorial.asgi:application"
QUICK_DEATH_SECONDS = 5
MAX_QUICK_DEATHS = 5


def default_processes() -> int:
    """One per core, at most four: the engine, the gateway and the reaper need CPU too."""
    return max(1, min(4, os.cpu_count() or 1))


# Connections the kernel has completed but daphne has not accepted yet, per process: a class
# arriving at once waits here rather than being refused.
ACCEPT_BACKLOG = 1024


def listening_socket(host: str, port: int) -> socket.socket:
    """One process's socket on ``host:port``; the others' sockets share the port by SO_REUSEPORT.

    A socket bound without SO_REUSEPORT (another program on the port) still refuses the bind, so
    a port already taken is an error, not a silent split with a stranger."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind((host, port))
        listener.listen(ACCEPT_BACKLOG)
    except OSError:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def daphne_command(fd: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "daphne", "--fd", str(fd), *extra, APPLICATION]


class Server:
    def __init__(self, host: str, port: int, listeners: list[socket.socket], extra: list[str]):
        self.host = host
        self.port = port
        self.listeners = listeners  # one per process, handed over (and closed here) at its spawn
        self.processes = len(listeners)
        self.extra = extra
        self.children: dict[int, tuple[subprocess.Popen, float]] = {}  # slot -> (process, started)
        self.quick_deaths = 0
        self.stopping = False

    def spawn(self, slot: int, listener: socket.socket | None = None) -> None:
        """Start the process of ``slot`` on ``listener``, or on a fresh socket (a restart).

        This process keeps no copy of the socket: when the child dies, its socket closes with it
        and the kernel sends new connections to the remaining processes' sockets, rather than
        queueing them on a socket no one accepts from until the restart. The price: connections
        still queued on a closed SO_REUSEPORT socket are dropped (reset), not moved to another
        socket; those clients connect again. A restart binds a fresh socket into the group."""
        if listener is None:
            listener = listening_socket(self.host, self.port)
        with listener:
            fd = listener.fileno()
            child = subprocess.Popen(daphne_command(fd, self.extra), pass_fds=(fd,))
        self.children[slot] = (child, time.monotonic())

    def stop(self, *_args) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for slot, listener in enumerate(self.listeners):
            self.spawn(slot, listener)
        self.listeners = []
        try:
            while not self.stopping:
                time.sleep(0.2)
                for slot, (child, started) in list(self.children.items()):
                    if child.poll() is None or self.stopping:
                        continue
                    lived = time.monotonic() - started
                    self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
                    print(f"serve: daphne process {child.pid} exited with {child.returncode} after {lived:.0f} s",
                          file=sys.stderr, flush=True)
                    if self.quick_deaths >= MAX_QUICK_DEATHS:
                        print("serve: daphne keeps dying at start; stopping (see its messages above)",
                              file=sys.stderr, flush=True)
                        return 1
                    time.sleep(1)
                    try:
                        self.spawn(slot)
                    except OSError as exc:  # the port was taken by someone else meanwhile
                        print(f"serve: cannot listen on {self.host}:{self.port} again: {exc.strerror}; "
                              "stopping", file=sys.stderr, flush=True)
                        return 1
            return 0
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for child, _ in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 10
        for child, _ in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--processes", type=int, default=0, help="daphne processes (0: one per core, at most 4)")
    args = parser.parse_args(argv)
    processes = args.processes or default_processes()
    if processes > 1 and not os.environ.get("REDIS_URL"):
        print("serve: REDIS_URL is not set, so events cannot cross processes: serving with one daphne process",
              file=sys.stderr, flush=True)
        processes = 1
    listeners: list[socket.socket] = []
    try:
        for _ in range(processes):
            listeners.append(listening_socket(args.host, args.port))
            args.port = listeners[0].getsockname()[1]  # --port 0: the others join the port the first got
    except OSError as exc:
        for listener in listeners:
            listener.close()
        print(f"serve: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"serve: http://{args.host}:{args.port} with {processes} daphne process(es)", file=sys.stderr, flush=True)
    return Server(args.host, args.port, listeners, extra).run()


if __name__ == "__main__":
    sys.exit(main())
