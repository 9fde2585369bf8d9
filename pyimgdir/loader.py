"""Stage 3, fill: batches of decoded, resized images from the C++ pipeline, as numpy.

The core's worker threads decode into pooled batch buffers with the GIL released; each
batch reaches Python as a numpy array that views its buffer without a copy. The buffer goes
back to the pool only when that array (and every view of it) is gone, so a batch you keep
is never overwritten.
"""

from __future__ import annotations

import itertools
import threading
import warnings
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from . import _core
from .errors import SkippedFile, SkippedFileWarning
from .order import epoch_permutation

# Unbatched datasets (batch_size=None) still decode in blocks of this many images.
_UNBATCHED_BLOCK = 32


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
        return (object if dtype == object else dtype.type), ()


class BatchSource:
    """Everything needed to produce epochs of one dataset (one subset)."""

    def __init__(
        self,
        file_paths: List[str],
        labels: _Labels,
        *,
        image_size,
        channels: int,
        interpolation: str,
        fit: str,
        channels_first: bool,
        dtype: str,
        batch_size: Optional[int],
        shuffle: bool,
        seed: int,
        num_threads: int,
        prefetch: int,
        max_pixels: int,
        pin_memory: bool,
        on_error: str = "raise",
        jpeg_downscale: bool = False,
        skipped: Optional[List[SkippedFile]] = None,
    ):
        self.file_paths = file_paths
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.height, self.width = int(image_size[0]), int(image_size[1])
        self.channels = channels
        self.channels_first = channels_first
        self.dtype = np.dtype(dtype)
        self.on_error = on_error
        # Every file left out so far (validation and iteration), first occurrence only.
        self.skipped: List[SkippedFile] = skipped if skipped is not None else []
        self._skipped_paths = {f.path for f in self.skipped}
        self.validated = False  # set when every file was decoded once before building
        self._loader = _core.Loader(
            file_paths,
            self.height,
            self.width,
            channels,
            interpolation=interpolation,
            fit=fit,
            channels_first=channels_first,
            dtype=dtype,
            num_threads=num_threads,
            prefetch=prefetch,
            max_pixels=max_pixels,
            lock_memory=pin_memory,
            skip_errors=on_error != "raise",
            jpeg_downscale=jpeg_downscale,
        )
        self._epoch_lock = threading.Lock()
        self._epochs = itertools.count()

    @property
    def num_samples(self) -> int:
        return len(self.file_paths)

    def __len__(self) -> int:
        if self.batch_size is None:
            return self.num_samples
        return -(-self.num_samples // self.batch_size)

    @property
    def sample_shape(self):
        if self.channels_first:
            return (self.channels, self.height, self.width)
        return (self.height, self.width, self.channels)

    def next_epoch(self) -> int:
        with self._epoch_lock:
            return next(self._epochs)

    def epoch_order(self, epoch: int) -> np.ndarray:
        n = self.num_samples
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        return epoch_permutation(n, self.seed, epoch)

    def _note_failures(self, failures) -> None:
        for _, _, path, reason in failures:
            if path in self._skipped_paths:
                continue
            self._skipped_paths.add(path)
            self.skipped.append(SkippedFile(path, reason))
            if self.on_error == "warn":
                warnings.warn(f"Skipping {path!r}: {reason}", SkippedFileWarning, stacklevel=3)

    def _raw_batches(self, order: np.ndarray, block: int):
        """(images, file indices) per core batch, failures already dropped and reported."""
        it = self._loader.iterate(order, block)
        config = self._loader.config
        try:
            while True:
                got = it.next(config)
                if got is None:
                    return
                images, first, failures = got
                if failures:
                    self._note_failures(failures)
                    dropped = {pos for pos, _, _, _ in failures}
                    positions = [p for p in range(first, first + len(images) + len(failures)) if p not in dropped]
                    files = order[positions]
                else:
                    files = order[first : first + len(images)]
                yield images, files
        finally:
            it.close()

    def iter_epoch(self, epoch: Optional[int] = None) -> Iterator:
        """Yields (images, labels) or images, batched or not, for one epoch."""
        if epoch is None:
            epoch = self.next_epoch()
        order = self.epoch_order(epoch)
        with_labels = self.labels.enabled
        if self.batch_size is None:
            for images, files in self._raw_batches(order, _UNBATCHED_BLOCK):
                labels = self.labels.encode(files) if with_labels else None
                for i in range(len(images)):
                    yield (images[i], labels[i]) if with_labels else images[i]
            return
        bs = self.batch_size
        carry_x: Optional[np.ndarray] = None  # samples waiting for a full batch (skip mode)
        carry_f: Optional[np.ndarray] = None
        for images, files in self._raw_batches(order, bs):
            if carry_x is None and len(images) == bs:
                # The common case: the core's buffer goes out as is, without a copy.
                yield (images, self.labels.encode(files)) if with_labels else images
                continue
            # Files were dropped: re-batch so every batch but the last stays full.
            carry_x = images.copy() if carry_x is None else np.concatenate([carry_x, images])
            carry_f = files if carry_f is None else np.concatenate([carry_f, files])
            while len(carry_x) >= bs:
                x, f = carry_x[:bs], carry_f[:bs]
                carry_x, carry_f = carry_x[bs:], carry_f[bs:]
                yield (x, self.labels.encode(f)) if with_labels else x
            if len(carry_x) == 0:
                carry_x = carry_f = None
        if carry_x is not None and len(carry_x):
            yield (carry_x, self.labels.encode(carry_f)) if with_labels else carry_x


class NumpyDataset:
    """A re-iterable dataset of numpy batches (``format="numpy"``).

    Each ``iter()`` is one epoch; with ``shuffle=True`` every epoch has a new order drawn
    from ``(seed, epoch)``. ``len()`` is the number of batches (of samples when
    ``batch_size=None``). Batches are ``(images, labels)``, or just ``images`` when the
    dataset has no labels.

    Attributes:
        class_names: the class names, as Keras reports them (None without labels).
        file_paths: the files, in Keras' order (after its global shuffle and split).
    """

    def __init__(self, source: BatchSource, class_names, file_paths: List[str]):
        self._source = source
        self.class_names = class_names
        self.file_paths = file_paths

    def __len__(self) -> int:
        return len(self._source)

    def __iter__(self):
        return self._source.iter_epoch()

    @property
    def batch_size(self) -> Optional[int]:
        return self._source.batch_size

    @property
    def image_shape(self):
        return self._source.sample_shape

    @property
    def dtype(self) -> np.dtype:
        return self._source.dtype

    @property
    def skipped_files(self) -> List[SkippedFile]:
        """Files left out (``on_error="skip"``/``"warn"``, or ``validate=True``), with reasons."""
        return self._source.skipped

    def epoch(self, epoch: int):
        """Iterates one given epoch (the order depends only on the seed and ``epoch``)."""
        return self._source.iter_epoch(epoch)

    def __repr__(self) -> str:
        return (
            f"NumpyDataset(files={len(self.file_paths)}, batches={len(self)}, "
            f"image_shape={self.image_shape}, dtype={self.dtype})"
        )
