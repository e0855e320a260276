#!/usr/bin/env bash
# Start a Docker engine when none answers, and wait for its socket.
# A dockerd that was killed leaves /var/run/docker.pid behind and a new one refuses to start
# until that stale file is gone, so remove it when no process owns it.
set -euo pipefail
sock=/var/run/docker.sock
if docker -H unix://$sock version >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd is not installed: apt-get install docker.io" >&2
  exit 1
fi
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi
if [ -f /var/run/docker/containerd/containerd.pid ] && ! kill -0 "$(cat /var/run/docker/containerd/containerd.pid)" 2>/dev/null; then
  rm -f /var/run/docker/containerd/containerd.pid
fi
mkdir -p "${TUTORIAL_DATA_DIR:-$(pwd)/data}"
# setsid: its own session, so Ctrl-C on `make run` (or the end of the shell that started it) does
# not take the engine, and every sandbox on it, down too.
setsid nohup dockerd >"${TUTORIAL_DATA_DIR:-$(pwd)/data}/dockerd.log" 2>&1 &
for _ in $(seq 1 120); do
  if docker -H unix://$sock version >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.5
done
echo "dockerd did not answer on $sock within 60 s; see ${TUTORIAL_DATA_DIR:-$(pwd)/data}/dockerd.log" >&2
exit 1
