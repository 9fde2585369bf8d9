"""Checking files before training: a full decode of every file, in parallel, with progress."""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, List, Optional, Sequence

from .. import _core
from ..errors import SkippedFile
from ..options.constants import CHANNELS



def _progress_bar(stream=None) -> Callable[[int, int], None]:
    stream = stream or sys.stderr
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.1:
            return
        last[0] = now
        width = 30
        filled = int(width * done / max(total, 1))
        stream.write(f"\rChecking files [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def default_progress(verbose: bool = True) -> Optional[Callable[[int, int], None]]:
    """A progress bar on stderr when it is a terminal and ``verbose``; otherwise nothing."""
    if verbose and hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        return _progress_bar()
    return None


def validate_files(
    file_paths: Sequence[str],
    color_mode: str = "rgb",
    *,
    max_pixels: int = 1 << 28,
    num_threads: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    decoder: str = "tensorflow",
    store=None,
) -> List[SkippedFile]:
    """Decodes every file in full and returns the ones that fail, with the reason.
    ``decoder`` is the dataset's (``"tensorflow"`` or ``"pillow"``): the two differ on a few
    files (a CMYK JPEG decodes as grayscale only with Pillow's conventions).

    ``progress(done, total)`` is called about ten times a second from the calling thread.
    Ctrl-C stops the check promptly.
    """
    if color_mode not in CHANNELS:
        raise ValueError(
            '`color_mode` must be one of {"rgb", "rgba", "grayscale"}. ' f"Received: color_mode={color_mode}"
        )
    paths = [str(p) for p in file_paths]
    if not paths:
        return []
    if store is not None:
        return _validate_remote(store, paths, CHANNELS[color_mode], max_pixels, num_threads, progress, decoder)
    checker = _core.FileChecker(paths, CHANNELS[color_mode], max_pixels, num_threads or 0, decoder)
    try:
        while not checker.wait(100):
            if progress is not None:
                progress(checker.done, checker.total)
        if progress is not None:
            progress(checker.total, checker.total)
    finally:
        checker.cancel()
    return [SkippedFile(path, reason) for _, path, reason in checker.failures()]


def _validate_remote(store, paths, channels, max_pixels, num_threads, progress, decoder) -> List[SkippedFile]:
    """URLs: fetched as an epoch fetches them (concurrent, retried, bytes capped), each
    decoded in full on a pool of threads (the decode releases the GIL)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from .remote import FetchError

    threads = num_threads or os.cpu_count() or 1
    reasons = {}
    gate = threading.BoundedSemaphore(2 * threads)  # decodes queued: bounds the bytes held
    done = [0]

    def check(i, data):
        try:
            _core.decode(data, channels, max_pixels, decoder)
        except ValueError as e:
            reasons[i] = str(e)
        finally:
            done[0] += 1
            gate.release()

    last = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for i, result in store.fetch_blocking(paths):
            if isinstance(result, FetchError):
                reasons[i] = result.reason
                done[0] += 1
            else:
                gate.acquire()
                pool.submit(check, i, result)
            if progress is not None and time.monotonic() - last >= 0.1:
                last = time.monotonic()
                progress(done[0], len(paths))
    if progress is not None:
        progress(len(paths), len(paths))
    return [SkippedFile(paths[i], reasons[i]) for i in sorted(reasons)]
