"""The Docker workspace gateway: a per-sandbox Docker Engine API endpoint with a classroom policy.

- ``policy``: pure rules (path normalisation, strict JSON, the allowlist, create/build rewriting).
- ``routes``: the allowlist, each route naming the handler that judges it.
- ``proxy``: the asyncio HTTP/1.1 proxy of one learner's socket: ownership checks and the handlers.
- ``relay``: bytes relayed once a request is judged: hijacked streams, event lines.
- ``prune``: a learner's prune, emulated object by object for their objects only.
- ``server``: opens one listener per docker-workspace sandbox (watching the engine), used by the
  ``run_gateway`` command and, when no gateway process runs, in-process by the Docker backend.
- ``cleanup``: removes everything a learner made when their sandbox ends.
- ``hooks``: what the gateway calls back in the site above it (activity, notices, idle timeouts),
  installed by ``SandboxConfig.ready()``: nothing here imports the sandbox services.
"""
