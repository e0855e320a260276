"""Helpers of the tests against kmock (the Kubernetes API emulator): the two tokens it hands out,
its URL, and a kubeconfig pointing at it."""

from __future__ import annotations

import yaml

SERVER_TOKEN = "server-admin-token-not-for-learners"
LEARNER_TOKEN = "learner-token-from-tokenrequest"


def api_url(api) -> str:
    return str(api.url).rstrip("/")


def write_kubeconfig(path, server: str, token: str = SERVER_TOKEN) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "server", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "server"}}],
        "current-context": "test",
    }))
    return str(path)
