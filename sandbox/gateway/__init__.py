"""The Docker workspace gateway: a per-sandbox Docker Engine API endpoint with a classroom policy.

- ``policy``: pure rules (path normalisation, strict JSON, the allowlist, create/build rewriting).
- ``proxy``: the asyncio HTTP/1.1 proxy of one learner's socket, streams and hijacks included.
- ``server``: opens one listener per docker-workspace sandbox (watching the engine), used by the
  ``run_gateway`` command and, when no gateway process runs, in-process by the Docker backend.
- ``cleanup``: removes everything a learner made when their sandbox ends.
- ``hooks``: what the gateway calls back in the site above it (activity, notices, idle timeouts),
  installed by ``SandboxConfig.ready()``: nothing here imports the sandbox services.
"""
