"""A local folder's files: the core walks the class folders in parallel (readdir, Keras'
sort order and extension filter, a guard against symlink loops), with the GIL released."""

from __future__ import annotations

import os
import sys
import time
from typing import Sequence

from .. import _core


class _ScanProgress:
    """Reports a long scan on stderr (only on a terminal, only after a second)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, directories: int, files: int) -> None:
        if time.monotonic() - self.start < 1.0:
            return
        self.shown = True
        self.stream.write(f"\rIndexing: {files} files in {directories} directories...")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def walk_classes(directory, subdirs: Sequence[str], follow_links: bool, formats, num_threads: int, verbose: bool = False,
                 relative: bool = False):
    """Every class folder's files in Keras' order, as one compact :class:`_core.FileIndex`
    (a file's top is its class folder's position in ``subdirs``); and the directories that
    could not be listed. ``relative``: paths relative to ``directory`` (for a manifest)."""
    tops = [os.fspath(os.path.join(directory, s)) for s in subdirs]
    base = "" if relative else directory
    prefixes = [os.fspath(os.path.join(base, s, "")) if (s or not relative) else "" for s in subdirs]
    progress = None
    if verbose and hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        progress = _ScanProgress()
    try:
        index, unreadable, _ = _core.walk_index(tops, prefixes, follow_links, list(formats), num_threads, progress)
    finally:
        if progress is not None:
            progress.close()
    return index, unreadable
