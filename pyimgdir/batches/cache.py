"""An opt-in cache of decoded, resized samples (``cache="memory"`` or ``cache="<file>"``).

The first epoch decodes as usual and keeps every sample; later epochs are served from the
cache without decoding. A sample is invalidated when its file changes (size or mtime);
the whole cache when the output changes (size, interpolation, colour mode, fit, data
format, dtype, JPEG downscaling) or the file list does. A file cache persists between
runs: ``<file>`` holds the samples (raw array, memory-mapped) and ``<file>.json`` the key,
the per-file stamps and which entries are filled.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import numpy as np


def _stamps(paths: Sequence[str]) -> np.ndarray:
    out = np.zeros((len(paths), 2), dtype=np.int64)
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
            out[i] = (st.st_size, st.st_mtime_ns)
        except OSError:
            out[i] = (-1, -1)
    return out


def _run_start(file_indices: np.ndarray):
    """The first index when `file_indices` are consecutive (a slice can replace them)."""
    n = len(file_indices)
    if n and file_indices[-1] - file_indices[0] == n - 1 and (n == 1 or bool((np.diff(file_indices) == 1).all())):
        return int(file_indices[0])
    return None


class SampleCache:
    """The samples of ``file_paths`` as ``spec`` makes them; ``spec.cache`` is ``"memory"``
    or the file to keep them in. Its key is ``spec.cache_key()`` (the fields that change
    the pixels) and the file list."""

    def __init__(self, file_paths: Sequence[str], spec, stamps=None):
        self.n = len(file_paths)
        self.shape = tuple(spec.sample_shape)
        self.dtype = np.dtype(spec.dtype)
        path = None if spec.cache == "memory" else str(spec.cache)
        self.path = path
        listing = hashlib.sha256("\0".join(file_paths).encode("utf-8", "surrogateescape")).hexdigest()
        self.key = json.dumps({**spec.cache_key(), "files": listing}, sort_keys=True)
        # (size, mtime) per local file; for URLs the caller passes (size, ETag hash)
        self.stamps = _stamps(file_paths) if stamps is None else np.asarray(stamps, dtype=np.int64)
        self.valid = np.zeros(self.n, dtype=bool)
        self.hits = 0
        self.misses = 0
        if path is None:
            self.data = np.empty((self.n,) + self.shape, dtype=self.dtype)
        else:
            self._open_file(path)

    # -- file-backed cache -------------------------------------------------------------
    def _meta_path(self) -> str:
        return self.path + ".json"

    def _open_file(self, path: str) -> None:
        size = self.n * int(np.prod(self.shape)) * self.dtype.itemsize
        meta = None
        try:
            with open(self._meta_path()) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = None
        reuse = (
            meta is not None
            and meta.get("key") == self.key
            and os.path.exists(path)
            and os.path.getsize(path) == size
        )
        if not reuse:
            with open(path, "wb") as f:
                f.truncate(size)
        self.data = np.memmap(path, dtype=self.dtype, mode="r+", shape=(self.n,) + self.shape)
        if reuse:
            old_stamps = np.asarray(meta["stamps"], dtype=np.int64).reshape(-1, 2)
            valid = np.asarray(meta["valid"], dtype=bool)
            # A sample stays valid only if its file is unchanged since it was cached.
            self.valid = valid & (old_stamps == self.stamps).all(axis=1)
        self._save_meta()

    def _save_meta(self) -> None:
        if self.path is None:
            return
        tmp = self._meta_path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"key": self.key, "stamps": self.stamps.ravel().tolist(), "valid": self.valid.tolist()}, f)
        os.replace(tmp, self._meta_path())

    def flush(self) -> None:
        if self.path is not None:
            self.data.flush()
            self._save_meta()

    # -- use ---------------------------------------------------------------------------
    def has_all(self, file_indices: np.ndarray) -> bool:
        return bool(self.valid[file_indices].all())

    def get(self, file_indices: np.ndarray) -> np.ndarray:
        """The samples, in order. A run of consecutive files (unshuffled epochs) comes back
        as a read-only view of the cache, without a copy; other orders as a new array."""
        self.hits += len(file_indices)
        start = _run_start(file_indices)
        if start is not None:
            view = np.asarray(self.data[start : start + len(file_indices)]).view()
            view.flags.writeable = False
            return view
        return np.asarray(self.data[file_indices])

    def put(self, file_indices: np.ndarray, images: np.ndarray) -> None:
        self.misses += len(file_indices)
        start = _run_start(file_indices)
        if start is not None:
            self.data[start : start + len(file_indices)] = images  # one block copy
        else:
            self.data[file_indices] = images
        self.valid[file_indices] = True
