"""Runs an ASGI app under uvicorn the way both entry points need it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import uvicorn

GRACEFUL_SHUTDOWN_SECONDS = 10
# Longer than any client's idle keep-alive (the router's pool keeps connections 30 s): a server
# that closes an idle connection first races the client's next request on it, which then fails
# with a reset (uvicorn's own default is 5 s).
KEEP_ALIVE_SECONDS = 75


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def serve(app: Any, host: str, port: int, on_exit: Callable[[], None] | None = None) -> int:
    """Serves until SIGINT or SIGTERM; `on_exit` runs first (e.g. to fail readiness while
    in-flight requests finish). Exit code 0, or 1 when the server could not start."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            # the fast parser and event loop the package depends on (uvicorn loads them by name)
            http="httptools",
            loop="uvloop",
        )
    )
    if on_exit is not None:
        original_exit = server.handle_exit

        def exit_after_hook(sig: int, frame: Any) -> None:
            on_exit()
            original_exit(sig, frame)

        server.handle_exit = exit_after_hook  # type: ignore[method-assign]
    server.run()
    return 0 if server.started else 1
