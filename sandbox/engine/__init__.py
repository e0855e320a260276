"""The leaf that speaks to the Docker engine: label names, errors, the API version, the "engine
down" message, the asyncio HTTP/1.1 client for the engine's unix socket (small calls and hijacked
streams) and the one reader of its multiplexed output frames.

It imports nothing of the project, so the backends, the gateway, the home-file copies, the doctor
and the benchmarks all stand on it and none of them on each other.
"""
