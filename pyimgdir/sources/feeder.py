"""Feeding fetched objects to the core: one epoch's URLs fetched ahead (requests and bytes in
flight capped by the store) and handed to a fed-mode core iterator's decode threads."""

from __future__ import annotations

import threading
from typing import Dict, Sequence

from .remote import FetchError, RemoteStore


class EpochFeeder:
    """Fetches one epoch's objects ahead of the core's decode threads and feeds them to a
    fed-mode core iterator. Bytes are released (and the cap freed) as the core finishes
    with them; `close()` cancels requests in flight and returns within a second."""

    def __init__(self, store: RemoteStore, iterator, urls_in_order: Sequence[str]):
        self.store = store
        self.it = iterator
        self.urls = list(urls_in_order)
        # Each object counts at least bytes_in_flight / (4 * requests_in_flight) against the
        # bytes cap: fetching runs at most 4 * requests_in_flight objects ahead of the decode
        # threads, so when the consumer stops taking batches (a tf.data pipeline left
        # suspended after Ctrl-C, say) fetching stops soon after, whatever the objects' size.
        opts = store.options
        floor = max(1, int(opts.bytes_in_flight) // (4 * max(1, int(opts.requests_in_flight))))
        self.sizes = [max(store.sizes.get(u, 0), floor) for u in self.urls]
        self.accounted: Dict[int, int] = {}
        self.held = [0]
        self.cond = threading.Condition()
        self.delivered = bytearray(len(self.urls))
        self._job = None  # the store's fetching handle (native threads or fsspec's loop)

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
        self._job = self.store.start_fetching(range(len(self.urls)), self.urls, self.sizes, self._deliver,
                                              self._poll_released, self.held, self.cond, self._broken)

    def _broken(self, exc: BaseException) -> None:
        # The fetcher itself broke (not one request): every position still waiting
        # fails with the reason, so the consumer is never left waiting.
        reason = f"fetching stopped: {type(exc).__name__}: {exc}"
        for pos in range(len(self.urls)):
            if not self.delivered[pos]:
                if not self.it.feed_failure(pos, reason):
                    break

    def close(self, timeout: float = 1.0) -> None:
        """Stops fetching: requests not yet sent are never sent; those in flight are cancelled
        (fsspec) or finish unread within their timeout (native client)."""
        job, self._job = self._job, None
        if job is not None:
            job.cancel(timeout)
