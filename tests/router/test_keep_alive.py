"""The router's connection pool and the exporters' servers agree on idle connections: the pool
lets one go before the server would close it, so no request is sent on a connection the server
is closing (it would fail with a reset and fail over for nothing)."""

from __future__ import annotations

import inspect

import uvicorn

from modelmon.router.app import POOL_KEEP_ALIVE_SECONDS
from modelmon.serving import KEEP_ALIVE_SECONDS


def test_the_pool_drops_idle_connections_before_the_servers_do() -> None:
    assert POOL_KEEP_ALIVE_SECONDS < KEEP_ALIVE_SECONDS
    uvicorn_default = inspect.signature(uvicorn.Config).parameters["timeout_keep_alive"].default
    assert uvicorn_default < POOL_KEEP_ALIVE_SECONDS, "why the servers set their own"
