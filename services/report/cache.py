"""Rendered reports, kept per (provider, period, variant, format, version).

A PDF takes about a second to draw (six matplotlib charts and a reportlab
layout); a quality officer and a gemeente opening the same report should not
pay that each time, and a burst of reads must not queue behind renders. The
key carries a version fingerprint of everything the output depends on
(figures, annotations, provider name, template revision), so a cached output
is never stale: a change produces a new key and the old entry ages out.

Renders run in worker threads, at most ``max_parallel`` at a time, so JSON
reads on the event loop stay fast while PDFs are drawn; concurrent requests
for the same key share one render.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class RenderCache(Generic[T]):
    """Single-flight LRU of built values, bounded by the sum of their sizes."""

    def __init__(
        self, *, max_size: int, size: Callable[[T], int], max_parallel: int = 2
    ) -> None:
        self.max_size = max_size
        self._size = size
        self._used = 0
        self._done: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Task[T]] = {}
        # A thread semaphore, taken inside the worker thread: it belongs to no event loop.
        self._slots = threading.BoundedSemaphore(max_parallel)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._done)

    async def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value for ``key``, building it in a worker thread if it is not cached."""
        with self._lock:
            hit = self._done.get(key)
            if hit is not None:
                self._done.move_to_end(key)
                return hit[0]
        loop = asyncio.get_running_loop()
        task = self._pending.get(key)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._build(key, build))
            # A failure reaches every waiter; mark it retrieved so a render nobody waits
            # for any more (all readers hung up) does not log "exception never retrieved".
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._pending[key] = task
        return await asyncio.shield(task)

    def _limited(self, build: Callable[[], T]) -> T:
        with self._slots:
            return build()

    async def _build(self, key: Hashable, build: Callable[[], T]) -> T:
        try:
            value = await run_in_threadpool(self._limited, build)
            size = self._size(value)
            if size <= self.max_size:
                with self._lock:
                    if key not in self._done:
                        self._done[key] = (value, size)
                        self._used += size
                    while self._used > self.max_size:
                        _, (_, freed) = self._done.popitem(last=False)
                        self._used -= freed
            return value
        finally:
            if self._pending.get(key) is asyncio.current_task():
                del self._pending[key]
