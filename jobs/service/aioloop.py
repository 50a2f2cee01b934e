"""The service's gRPC server runs on asyncio (grpc.aio): one event loop answers every call without a
thread hand-off per call, which on a small machine is what the synchronous server's thread pool spent
most of its time on (futex waits and GIL switches between 32 threads). The service itself stays plain
blocking Python: the servicer runs it inline where it is a catalog read, and in a thread pool otherwise.

`Server` gives the aio server the blocking API the CLI and the tests use (start, stop,
wait_for_termination), running it on one event loop thread shared by every server of the process
(grpc.aio keeps process-wide state; one loop is the arrangement it supports everywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent import futures
from typing import Any, TypeVar

import grpc

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for gRPC servers, started on first use in a daemon thread."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="foveate-grpc-loop", daemon=True).start()
        return _loop


def run(coro: Awaitable[T]) -> T:
    """Run `coro` on the server loop and wait for its result (never call this from the loop itself)."""
    return asyncio.run_coroutine_threadsafe(coro, loop()).result()


_END = object()


async def iterate_in(pool: futures.Executor, gen: Iterator[T]) -> AsyncIterator[T]:
    """The items of a blocking generator, each `next` run in `pool`; the generator is closed at the end,
    in the pool (if the caller left while a `next` was still waiting, that thread closes nothing: the
    generator returns by itself once its `cancelled()` says so)."""
    ev = asyncio.get_running_loop()
    try:
        while True:
            item = await ev.run_in_executor(pool, next, gen, _END)
            if item is _END:
                return
            yield item
    finally:
        pool.submit(_close, gen)


def _close(gen: Iterator[Any]) -> None:
    with contextlib.suppress(ValueError):  # "generator already executing": the thread in it finishes it
        gen.close()  # type: ignore[attr-defined]


class Server:
    """A grpc.aio server (built by `build` on the loop) behind the blocking API of grpc.Server.
    `on_stop` coroutines run before the server stops (e.g. health checks say NOT_SERVING)."""

    def __init__(self, build: Callable[[], Awaitable[tuple[grpc.aio.Server, int]]],
                 pools: tuple[futures.ThreadPoolExecutor, ...] = ()):
        self._server, self.port = run(build())
        self._pools = pools
        self._stopped = threading.Event()
        self.on_stop: list[Callable[[], Awaitable[None]]] = []

    def start(self) -> None:
        run(self._server.start())

    def stop(self, grace: float | None) -> threading.Event:
        """Stop taking calls; calls in flight get `grace` seconds (None: cancelled now). Returns once
        stopped, with an Event that is set (as grpc.Server.stop's is once it has stopped)."""
        async def stop() -> None:
            for hook in self.on_stop:
                await hook()
            await self._server.stop(grace)
        if not self._stopped.is_set():
            run(stop())
            for pool in self._pools:
                pool.shutdown(wait=False, cancel_futures=True)
            self._stopped.set()
        return self._stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Block until stop() (from another thread or a signal handler); False on `timeout`."""
        waited = 0.0
        while not self._stopped.wait(0.5):  # in slices: the main thread must stay free for signal handlers
            waited += 0.5
            if timeout is not None and waited >= timeout:
                return False
        return True
