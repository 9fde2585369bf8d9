"""Feeding fetched objects to the core: one epoch's URLs fetched ahead (requests and bytes in
flight capped by the store) and handed to a fed-mode core iterator's decode threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Dict, Optional, Sequence

from .remote import FetchError, RemoteStore, schedule_fetches


class EpochFeeder:
    """Fetches one epoch's objects ahead of the core's decode threads and feeds them to a
    fed-mode core iterator. Bytes are released (and the cap freed) as the core finishes
    with them; `close()` cancels requests in flight and returns within a second."""

    def __init__(self, store: RemoteStore, iterator, urls_in_order: Sequence[str]):
        self.store = store
        self.it = iterator
        self.urls = list(urls_in_order)
        self.sizes = [store.sizes.get(u, 0) for u in self.urls]
        self.accounted: Dict[int, int] = {}
        self.held = [0]
        self.cond = threading.Condition()
        self.delivered = bytearray(len(self.urls))
        self._future: Optional[concurrent.futures.Future] = None

    def _poll_released(self) -> None:
        released = self.it.release_fed()
        if released:
            with self.cond:
                for pos in released:
                    self.held[0] -= self.accounted.pop(pos, 0)

    def _deliver(self, pos: int, result) -> bool:
        self.delivered[pos] = 1
        if isinstance(result, FetchError):
            self.accounted[pos] = max(int(self.sizes[pos]), 1)
            ok = self.it.feed_failure(pos, result.reason)
            if ok:
                # no bytes are kept for a failure
                with self.cond:
                    self.held[0] -= self.accounted.pop(pos, 0)
            return ok
        self.accounted[pos] = max(len(result), max(int(self.sizes[pos]), 1))
        return self.it.feed(pos, result)

    def start(self) -> None:
        async def run():
            await schedule_fetches(self.store, list(range(len(self.urls))), self.urls, self.sizes,
                            self._deliver, self._poll_released, self.held, self.cond)

        self._future = asyncio.run_coroutine_threadsafe(run(), self.store.loop)
        self._future.add_done_callback(self._done)

    def _done(self, fut) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            # The fetcher itself broke (not one request): every position still waiting
            # fails with the reason, so the consumer is never left waiting.
            reason = f"fetching stopped: {type(exc).__name__}: {exc}"
            for pos in range(len(self.urls)):
                if not self.delivered[pos]:
                    if not self.it.feed_failure(pos, reason):
                        break

    def close(self, timeout: float = 1.0) -> None:
        fut = self._future
        if fut is None or fut.done():
            return
        self.store.loop.call_soon_threadsafe(fut.cancel)
        try:
            fut.result(timeout=timeout)
        except BaseException:  # noqa: BLE001 - cancelled, or it failed; the consumer reports failures
            pass
