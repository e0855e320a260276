"""A new Redis connection of the channel layer costs no look-up of the installed packages: a class
opening its consoles at once opens many connections together."""

from importlib import metadata

import redis.utils

from tutorial.channel_layers import ResilientRedisChannelLayer


def test_new_connections_reuse_one_client_description(monkeypatch):
    layer = ResilientRedisChannelLayer(hosts=[{"address": "unix:///tmp/tutorial-no-such-redis.sock"}])
    lookups = []
    original = redis.utils.get_lib_version
    monkeypatch.setattr(redis.utils, "get_lib_version", lambda: lookups.append(1) or original())
    pool = layer.create_pool(0)
    connections = [pool.make_connection() for _ in range(3)]
    assert lookups == []
    # What the server is told is unchanged: redis-py's name and its installed version.
    for connection in connections:
        assert connection.driver_info.formatted_name == "redis-py"
        assert connection.driver_info.lib_version == metadata.version("redis")


def test_the_settings_are_left_as_they_were():
    hosts = [{"address": "unix:///tmp/tutorial-no-such-redis.sock", "socket_timeout": 15}]
    ResilientRedisChannelLayer(hosts=hosts)
    assert hosts == [{"address": "unix:///tmp/tutorial-no-such-redis.sock", "socket_timeout": 15}]
