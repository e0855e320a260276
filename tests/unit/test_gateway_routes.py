"""The gateway's allowlist binds each route to its handler once, when the gateway is imported."""

from __future__ import annotations

import pytest

from sandbox.gateway import proxy
from sandbox.gateway.routes import ROUTE_TABLE, compile_routes, find_route


def test_a_route_naming_a_missing_handler_stops_the_gateway_from_starting():
    handlers = {name: handler for name, handler in proxy.HANDLERS.items() if name != "prune"}
    with pytest.raises(LookupError, match="prune"):
        compile_routes(ROUTE_TABLE, handlers)


def test_a_misspelt_handler_name_is_refused():
    with pytest.raises(LookupError, match="container_opp"):
        compile_routes([("GET", r"^/containers/json$", "container_opp")], proxy.HANDLERS)


def test_every_route_runs_a_handler_of_the_learner_proxy():
    assert {route.handler for route in proxy.ROUTES} <= set(vars(proxy.LearnerProxy).values())
    assert len(proxy.ROUTES) == len(ROUTE_TABLE)


def test_a_call_is_judged_by_the_first_route_that_allows_its_method():
    route, match = find_route(proxy.ROUTES, "POST", "/containers/web/start")
    assert route.handler is proxy.LearnerProxy.h_container_op
    assert match.group("id") == "web"
    route, _ = find_route(proxy.ROUTES, "PUT", "/containers/web/archive")
    assert route.handler is proxy.LearnerProxy.h_container_archive
    assert find_route(proxy.ROUTES, "POST", "/swarm/init") is None
    assert find_route(proxy.ROUTES, "DELETE", "/containers/json") is not None  # a container named "json"
    assert find_route(proxy.ROUTES, "PUT", "/containers/create") is None
