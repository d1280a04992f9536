"""kube-proxy's part of the local stack: one TCP listener on 127.0.0.1 per Service port, which
sends each new connection to the next of the Service's ready endpoints (round robin).

As kube-proxy does: a connection stays with the endpoint it was sent to for its whole life
(keep-alive connections included); endpoints that are not ready get no new connections; a
Service with no ready endpoint turns connections away at once (kube-proxy rejects them; here they
are reset); when an endpoint's process dies, its connections are reset, so clients see the
failure as they would on a cluster. All listeners share one event loop on a thread of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import threading
from collections.abc import Sequence

from local_stack.pods import LOOPBACK

CHUNK = 65536


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes a connection with a TCP reset, as a refused or dead endpoint does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copies until end of stream, then half-closes the sink; a reset on one side resets the
    other."""
    try:
        while chunk := await source.read(CHUNK):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, OSError):
        _reset(sink)
        raise
    if sink.can_write_eof():
        with contextlib.suppress(OSError):
            sink.write_eof()


class ServiceProxies:
    """The listeners of every Service port, and the ready endpoints of each."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kube-proxy", daemon=True
        )
        self._endpoints: dict[str, list[int]] = {}
        self._turns: dict[str, itertools.count[int]] = {}
        self._servers: dict[str, asyncio.Server] = {}
        self._thread.start()

    def listen(self, key: str) -> int:
        """Opens the listener of a Service port (`key` names it); returns its port."""
        self._endpoints[key] = []
        self._turns[key] = itertools.count()

        async def open_server() -> asyncio.Server:
            return await asyncio.start_server(
                lambda r, w: self._connect(key, r, w), LOOPBACK, 0, reuse_address=True
            )

        server = asyncio.run_coroutine_threadsafe(open_server(), self._loop).result(10)
        self._servers[key] = server
        return int(server.sockets[0].getsockname()[1])

    def remove(self, key: str) -> None:
        """The Service is deleted: its listener closes and its endpoints are forgotten."""
        server = self._servers.pop(key)

        async def shut() -> None:
            server.close()
            self._endpoints.pop(key, None)
            self._turns.pop(key, None)

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)

    def set_endpoints(self, key: str, ports: Sequence[int]) -> None:
        """The ready endpoints of a Service port, as loopback ports."""
        self._loop.call_soon_threadsafe(self._endpoints.__setitem__, key, list(ports))

    async def _connect(
        self, key: str, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        ready = self._endpoints.get(key, [])
        if not ready:
            _reset(client)
            return
        port = ready[next(self._turns[key]) % len(ready)]
        try:
            upstream_reader, upstream = await asyncio.open_connection(LOOPBACK, port)
        except OSError:
            _reset(client)
            return
        try:
            results = await asyncio.gather(
                _pipe(client_reader, upstream),
                _pipe(upstream_reader, client),
                return_exceptions=True,
            )
            failed = any(isinstance(result, BaseException) for result in results)
        except asyncio.CancelledError:  # the stack is stopping
            failed = True
        for writer in (client, upstream):
            if failed:
                _reset(writer)
            else:
                writer.close()

    def close(self) -> None:
        async def shut() -> None:
            for server in self._servers.values():
                server.close()
            connections = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()
