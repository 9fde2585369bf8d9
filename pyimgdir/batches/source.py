"""Stage 3, fill: batches of decoded, resized images from the C++ pipeline, as numpy.

The core's worker threads decode into pooled batch buffers with the GIL released; each
batch reaches Python as a numpy array that views its buffer without a copy. The buffer goes
back to the pool only when that array (and every view of it) is gone, so a batch you keep
is never overwritten.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import warnings
import weakref
from typing import Iterator, List, Optional, Tuple

import numpy as np

from .. import _core
from ..errors import SkippedFile, SkippedFileWarning
from ..order import epoch_permutation, shard_size, shard_slice
from ..options.spec import LoadSpec
from ..sources.index import FilePaths

# Unbatched datasets (batch_size=None) still decode in blocks of this many images.
_UNBATCHED_BLOCK = 32

# Core iterators currently running an epoch. At interpreter exit they are closed, so a
# thread blocked waiting for a batch (a tf.data prefetch thread inside the generator, say)
# returns and the process can exit instead of waiting for it forever.
_LIVE_ITERATORS: "set" = set()
_LIVE_LOCK = threading.Lock()
_WAITING = [0]  # threads inside a core iterator's next() right now


def _close_live_iterators() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE_ITERATORS)
    for it in live:
        try:
            it.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    # Let threads that were waiting for a batch see the iterator closed and leave.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        with _LIVE_LOCK:
            if not _WAITING[0]:
                break
        time.sleep(0.01)
    # A traceback kept for the interactive prompt holds generator frames (and with them
    # tf.data iterators) alive; drop it so they can be finalized.
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            setattr(sys, name, None)
    gc.collect()


atexit.register(_close_live_iterators)


class _Labels:
    """Turns raw per-file labels into Keras' label_mode encodings, one batch at a time."""

    def __init__(self, raw: Optional[np.ndarray], label_mode: Optional[str], num_classes: int):
        self.raw = raw
        self.mode = label_mode
        self.num_classes = num_classes

    @property
    def enabled(self) -> bool:
        return self.mode is not None and self.raw is not None

    def encode(self, file_indices: np.ndarray):
        x = self.raw[file_indices]
        if self.mode == "binary":
            return x.astype(np.float32).reshape(-1, 1)
        if self.mode == "categorical":
            # tf.one_hot: an index outside [0, depth) gives an all-zero row.
            out = np.zeros((len(x), self.num_classes), dtype=np.float32)
            xi = x.astype(np.int64)
            ok = (xi >= 0) & (xi < self.num_classes)
            out[np.nonzero(ok)[0], xi[ok]] = 1.0
            return out
        return x

    def spec(self):
        """(dtype, per-sample shape) for the TF output signature."""
        if self.mode == "binary":
            return np.float32, (1,)
        if self.mode == "categorical":
            return np.float32, (self.num_classes,)
        dtype = self.raw.dtype
        return (object if dtype.kind == "O" else dtype.type), ()


def _index_array(order) -> np.ndarray:
    """An order given by the caller as an integer array (kept 32-bit if it is)."""
    a = np.asarray(order)
    return a if a.dtype.kind in "iu" else a.astype(np.int64)


# Lists of at least this many files travel to worker processes as shared, mapped files.
_SHARE_AT = 100_000


def _shared_dir() -> str:
    """Where shared index files go: memory-backed /dev/shm when there is one."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return socket.gethostname()


# Shared files written by this process: kept until it exits (a worker may start, and map
# them, long after the pickle was made, and from a copy of the dataset that wrote them).
_WRITTEN: list = []
_SHARED_LOCK = threading.Lock()


class _SharedFiles:
    """A source's files, labels and fixed order written once for processes on this machine
    to map: the compact index and rows (_core.FileList.write_mapped), numpy arrays as .npy
    (memory-mapped read-only). Removed when the process that wrote them exits."""

    def __init__(self, files, raw_labels, permutation):
        self.permutation = permutation
        self.dir = tempfile.mkdtemp(prefix="pyimgdir-index-", dir=_shared_dir())
        weakref.finalize(self, shutil.rmtree, self.dir, True)
        _WRITTEN.append(self)
        files.write_mapped(os.path.join(self.dir, "files"))
        self.labels = raw_labels is not None and raw_labels.dtype.kind != "O"
        if self.labels:
            np.save(os.path.join(self.dir, "labels.npy"), raw_labels)
        self.inline_labels = raw_labels if not self.labels else None
        if permutation is not None:
            np.save(os.path.join(self.dir, "permutation.npy"), permutation)

    def state(self) -> dict:
        return {"dir": self.dir, "boot": _boot_id(), "labels": self.labels,
                "inline_labels": self.inline_labels, "permutation": self.permutation is not None}

    @staticmethod
    def open(state: dict):
        where = state["dir"]
        if state["boot"] != _boot_id() or not os.path.isdir(where):
            raise RuntimeError(
                f"This dataset was pickled with its file index in shared files at {where!r} on another "
                "machine (or the dataset that wrote them is gone): a pickle of a dataset of "
                f"{_SHARE_AT:,} files or more is for worker processes on the same machine. Build the "
                "dataset on this machine instead (a manifest, `pyimgdir scan DIR --manifest FILE`, saves "
                "walking the folder).")
        files = _core.FileList.map_file(os.path.join(where, "files"))
        def mapped(name):  # a plain ndarray over the mapped pages (no copy)
            return np.asarray(np.load(os.path.join(where, name), mmap_mode="r"))

        raw = mapped("labels.npy") if state["labels"] else state["inline_labels"]
        perm = mapped("permutation.npy") if state["permutation"] else None
        return files, raw, perm


class BatchSource:
    """Everything needed to produce epochs of one dataset (one subset)."""

    def __init__(self, files, labels: _Labels, spec: LoadSpec,
                 skipped: Optional[List[SkippedFile]] = None, store=None):
        self.spec = spec
        # A remote.RemoteStore when the files are URLs: their bytes are fetched ahead and
        # fed to the core's decode threads instead of being read by them.
        self.store = store
        # The files, as rows of the compact index (a _core.FileList; a list of paths is
        # indexed first); file_paths builds each path when asked for.
        if not isinstance(files, _core.FileList):
            files = _core.FileList(_core.FileIndex.from_paths(files))
        self.files = files
        self.file_paths = FilePaths(files)
        file_paths = self.file_paths
        self.labels = labels
        # Every file left out so far (validation and iteration), first occurrence only.
        self.skipped: List[SkippedFile] = list(skipped) if skipped is not None else []
        self._skipped_paths = {f.path for f in self.skipped}
        self._loader = _core.Loader(files, spec.core_config())
        # With shuffle: one fixed order for every epoch when set (Keras' grain path), else
        # a new permutation per epoch from (seed, epoch).
        self.permutation: Optional[np.ndarray] = None
        self.cache = None
        if spec.cache is not None:
            from .cache import SampleCache

            stamps = None
            if store is not None:
                from ..sources.remote import stamps_array

                stamps = stamps_array(store, file_paths)
            self.cache = SampleCache(file_paths, spec, stamps=stamps)
        self.shard_index, self.shard_count = spec.shard
        self.shard_remainder = spec.shard_remainder
        self._lock = threading.Lock()
        # Position of the next batch this source hands out: (epoch, batch within it).
        self._next_epoch = 0
        self._resume_batch = 0
        self._position = (0, 0)
        if spec.initial_state is not None:
            self._next_epoch = int(spec.initial_state["epoch"])
            self._resume_batch = int(spec.initial_state["batches"])
            self._position = (self._next_epoch, self._resume_batch)

    # The spec's fields every stage reads, by the names the outputs use.
    batch_size = property(lambda self: self.spec.batch_size)
    shuffle = property(lambda self: self.spec.shuffle)
    seed = property(lambda self: self.spec.seed)
    on_error = property(lambda self: self.spec.on_error)
    validated = property(lambda self: self.spec.validate, doc="every file was decoded once before building")
    dtype = property(lambda self: np.dtype(self.spec.dtype))

    @property
    def num_samples(self) -> int:
        """Samples per epoch for this shard (after padding or dropping the remainder)."""
        return shard_size(len(self.files), self.shard_count, self.shard_remainder)

    def __len__(self) -> int:
        if self.batch_size is None:
            return self.num_samples
        return -(-self.num_samples // self.batch_size)

    @property
    def sample_shape(self):
        return self.spec.sample_shape

    def claim_epoch(self) -> Tuple[int, int]:
        """The epoch the next iteration runs, and the batch it starts at (non-zero only
        for the first epoch after resuming from a mid-epoch state)."""
        with self._lock:
            epoch, start = self._next_epoch, self._resume_batch
            self._next_epoch += 1
            self._resume_batch = 0
            return epoch, start

    def set_epoch(self, epoch: int) -> None:
        with self._lock:
            self._next_epoch = int(epoch)
            self._resume_batch = 0
            self._position = (int(epoch), 0)

    def state(self) -> dict:
        """Where the next batch comes from: seed, epoch and batches already consumed."""
        with self._lock:
            epoch, batches = self._position
        return self.state_at(epoch, batches)

    def state_at(self, epoch: int, batches: int) -> dict:
        """The state (``initial_state=`` of a new dataset) of this dataset's position after
        ``batches`` batches of ``epoch``."""
        return {"seed": int(self.seed), "epoch": int(epoch), "batches": int(batches),
                "shard": [int(self.shard_index), int(self.shard_count)]}

    def epoch_order(self, epoch: int, part: Optional[slice] = None) -> np.ndarray:
        """File indices of this shard's epoch, in order (the same on every worker); with
        ``part``, only that slice of it (a Grain worker's), widened to int64 alone."""
        n = len(self.files)
        if self.shuffle and self.permutation is not None:
            full = self.permutation
        elif self.shuffle:
            # 32-bit while whole (every shard computes all of it), widened once sliced
            full = epoch_permutation(n, self.seed, epoch, np.uint32 if n < 2**32 else np.int64)
        else:
            full = np.arange(n, dtype=np.uint32 if n < 2**32 else np.int64)
        order = shard_slice(full, self.shard_index, self.shard_count, self.shard_remainder)
        if part is not None:
            order = order[part]
        # One copy, of this shard's (and part's) files only: the whole epoch's order is
        # not kept alive by a view of it; 32-bit, as the core keeps it.
        return np.array(order, dtype=np.uint32 if n < 2**32 else np.int64, copy=True)

    def _note_failures(self, failures) -> None:
        for _, _, path, reason in failures:
            if path in self._skipped_paths:
                continue
            self._skipped_paths.add(path)
            self.skipped.append(SkippedFile(path, reason))
            if self.on_error == "warn":
                warnings.warn(f"Skipping {path!r}: {reason}", SkippedFileWarning, stacklevel=3)

    def crop_boxes(self, epoch: int, start_batch: int = 0, order: Optional[np.ndarray] = None) -> dict:
        """The crop box and flips of every sample of this shard's ``epoch`` from batch
        ``start_batch`` on, in order, read from the files' headers (no decoding). `order`
        replaces the epoch's file order, as in iter_epoch."""
        bs = self.batch_size or 1
        full = self.epoch_order(int(epoch)) if order is None else np.asarray(order, dtype=np.int64)
        order = full[int(start_batch) * bs :].astype(np.int64)
        if self.store is not None:
            return {"file_index": order, **self._remote_augments(order, int(epoch))}
        return {"file_index": order, **self._loader.augments(order, int(epoch))}

    def _remote_augments(self, order: np.ndarray, epoch: int) -> dict:
        """crop_boxes for URLs: the headers come from the fetched objects."""
        from ..sources.remote import FetchError

        urls = self.files.paths_at(order)
        heights = np.zeros(len(urls), dtype=np.int64)
        widths = np.zeros(len(urls), dtype=np.int64)
        for i, data in self.store.fetch_blocking(urls):
            if isinstance(data, FetchError):
                raise _core.DecodeError(str(data))
            try:
                heights[i], widths[i] = _core.image_size(data, self.spec.channels, self.spec.max_pixels)
            except _core.DecodeError as e:
                raise _core.DecodeError(f"{urls[i]}: {e}") from None
        return {**_core.draw_augments(self._loader.config, epoch, order, heights, widths),
                "image_height": heights, "image_width": widths}

    def _raw_batches(self, order: np.ndarray, block: int, epoch: int = 0):
        """(images, positions in `order`) per core batch, failures dropped and reported."""
        cache = self.cache
        if cache is not None:
            skipped = self._skipped_indices()
            keep = ~np.isin(order, skipped) if len(skipped) else np.ones(len(order), dtype=bool)
            if cache.has_all(order[keep].astype(np.int64)):
                # Every sample of this epoch is cached: no file is read or decoded.
                positions_all = np.nonzero(keep)[0]
                for start in range(0, len(positions_all), block):
                    positions = positions_all[start : start + block]
                    # skipped files are already out of positions_all: every block is full
                    # but the last, so nothing needs re-batching
                    yield cache.get(order[positions].astype(np.int64)), positions, False
                return
        feeder = None
        if self.store is None:
            it = self._loader.iterate(order, block, epoch)
        else:
            from ..sources.feeder import EpochFeeder

            it = self._loader.iterate(order, block, epoch, fed=True)
            feeder = EpochFeeder(self.store, it, self.files.paths_at(order))
            feeder.start()
        config = self._loader.config
        with _LIVE_LOCK:
            _LIVE_ITERATORS.add(it)
        try:
            while True:
                with _LIVE_LOCK:
                    _WAITING[0] += 1
                try:
                    got = it.next(config)
                finally:
                    with _LIVE_LOCK:
                        _WAITING[0] -= 1
                if got is None:
                    return
                images, first, failures = got
                if failures:
                    self._note_failures(failures)
                    dropped = {pos for pos, _, _, _ in failures}
                    end = first + len(images) + len(failures)
                    positions = np.array([p for p in range(first, end) if p not in dropped], dtype=np.int64)
                else:
                    positions = np.arange(first, first + len(images), dtype=np.int64)
                if cache is not None:
                    cache.put(order[positions].astype(np.int64), images)
                yield images, positions, bool(failures)
        finally:
            if feeder is not None:
                feeder.close()  # cancels requests in flight (within a second)
            it.close()
            with _LIVE_LOCK:
                _LIVE_ITERATORS.discard(it)
            if cache is not None:
                cache.flush()

    def _skipped_indices(self) -> np.ndarray:
        if not self.skipped:
            return np.zeros(0, dtype=np.int64)
        bad = {f.path for f in self.skipped}
        return np.array([i for i, p in enumerate(self.file_paths) if p in bad], dtype=np.int64)

    def __getstate__(self):
        # Rebuilt from what made it (in Grain's mp_prefetch and DataLoader workers); progress
        # is not kept. Small lists pickle whole (the compact index: a few bytes a file); large
        # ones go once into files that every process on this machine maps and shares (index,
        # rows, labels, fixed order), so a worker adds almost no memory of its own.
        state = {"spec": self.spec, "skipped": list(self.skipped), "store": self.store}  # a URL's store
        if len(self.files) >= _SHARE_AT and self.store is None:
            state["shared"] = self._shared_state()
            state["labels"] = _Labels(None, self.labels.mode, self.labels.num_classes)
        else:
            state.update(files=self.files, labels=self.labels, permutation=self.permutation)
        return state

    def __setstate__(self, state):
        if "shared" in state:
            files, raw, permutation = _SharedFiles.open(state["shared"])
            labels = state["labels"]
            labels.raw = raw
        else:
            files, labels, permutation = state["files"], state["labels"], state["permutation"]
        self.__init__(files, labels, state["spec"], skipped=state["skipped"], store=state.get("store"))
        self.permutation = permutation
        if "shared" in state:
            # A copy (Grain deep-copies before pickling) passes on the same shared files.
            self._mapped = (state["shared"], permutation)

    def _shared_state(self) -> dict:
        mapped = getattr(self, "_mapped", None)
        if mapped is not None and mapped[1] is self.permutation:
            return mapped[0]
        # Grain pickles the dataset for its workers from several threads at once: one writes.
        with _SHARED_LOCK:
            shared = getattr(self, "_shared", None)
            if shared is None or shared.permutation is not self.permutation:
                shared = self._shared = _SharedFiles(self.files, self.labels.raw, self.permutation)
        return shared.state()

    def iter_epoch(
        self, epoch: Optional[int] = None, start_batch: Optional[int] = None, order: Optional[np.ndarray] = None
    ) -> Iterator:
        """Yields (images, labels) or images, batched or not, for one epoch.

        Without arguments it runs the next epoch (resuming mid-epoch after a restored
        state); batches before `start_batch` are neither read nor decoded. `order` replaces
        the epoch's file order (a worker's slice of it, say).
        """
        if epoch is None:
            epoch, claimed_start = self.claim_epoch()
            start_batch = claimed_start if start_batch is None else start_batch
        start_batch = start_batch or 0
        full_order = self.epoch_order(epoch) if order is None else _index_array(order)
        bs = self.batch_size or 1
        order = full_order[start_batch * bs :]
        with_labels = self.labels.enabled
        batch_no = start_batch

        def advance(n_batches: int) -> None:
            nonlocal batch_no
            batch_no += n_batches
            done = batch_no * bs >= len(full_order)
            with self._lock:
                self._position = (epoch + 1, 0) if done else (epoch, batch_no)

        if self.batch_size is None:
            for images, positions, _ in self._raw_batches(order, _UNBATCHED_BLOCK, epoch):
                labels = self.labels.encode(order[positions]) if with_labels else None
                for i in range(len(images)):
                    advance(1)
                    yield (images[i], labels[i]) if with_labels else images[i]
            return
        carry_x: Optional[np.ndarray] = None  # samples waiting for a full batch (skip mode)
        carry_p: Optional[np.ndarray] = None
        for images, positions, dropped in self._raw_batches(order, bs, epoch):
            if carry_x is None and not dropped:
                # (a short batch without dropped files can only be the epoch's last)
                # The common case: the core's buffer goes out as is, without a copy.
                advance(1)
                yield (images, self.labels.encode(order[positions])) if with_labels else images
                continue
            # Files were dropped: re-batch so every batch but the last stays full.
            carry_x = images.copy() if carry_x is None else np.concatenate([carry_x, images])
            carry_p = positions if carry_p is None else np.concatenate([carry_p, positions])
            while len(carry_x) >= bs:
                x, p = carry_x[:bs], carry_p[:bs]
                carry_x, carry_p = carry_x[bs:], carry_p[bs:]
                advance(1)
                yield (x, self.labels.encode(order[p])) if with_labels else x
            if len(carry_x) == 0:
                carry_x = carry_p = None
        if carry_x is not None and len(carry_x):
            advance(1)
            yield (carry_x, self.labels.encode(order[carry_p])) if with_labels else carry_x
        with self._lock:
            self._position = (epoch + 1, 0)

