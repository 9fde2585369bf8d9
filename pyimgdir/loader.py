"""Stage 3, fill: batches of decoded, resized images from the C++ pipeline, as numpy.

The core's worker threads decode into pooled batch buffers with the GIL released; each
batch reaches Python as a numpy array that views its buffer without a copy. The buffer goes
back to the pool only when that array (and every view of it) is gone, so a batch you keep
is never overwritten.
"""

from __future__ import annotations

import itertools
import threading
from typing import Iterator, List, Optional, Sequence

import numpy as np

from . import _core
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

    def iter_epoch(self, epoch: Optional[int] = None) -> Iterator:
        """Yields (images, labels) or images, batched or not, for one epoch."""
        if epoch is None:
            epoch = self.next_epoch()
        order = self.epoch_order(epoch)
        block = self.batch_size or _UNBATCHED_BLOCK
        it = self._loader.iterate(order, block)
        config = self._loader.config
        try:
            while True:
                got = it.next(config)
                if got is None:
                    return
                images, first = got
                if self.labels.enabled:
                    labels = self.labels.encode(order[first : first + len(images)])
                if self.batch_size is not None:
                    yield (images, labels) if self.labels.enabled else images
                else:
                    for i in range(len(images)):
                        yield (images[i], labels[i]) if self.labels.enabled else images[i]
        finally:
            it.close()


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

    def epoch(self, epoch: int):
        """Iterates one given epoch (the order depends only on the seed and ``epoch``)."""
        return self._source.iter_epoch(epoch)

    def __repr__(self) -> str:
        return (
            f"NumpyDataset(files={len(self.file_paths)}, batches={len(self)}, "
            f"image_shape={self.image_shape}, dtype={self.dtype})"
        )
