"""Stage 4, expose: a Grain dataset over the C++ batches (``format="grain"``; Grain imported here only).

Keras' grain path returns ``MapDataset.source(paths).shuffle(seed).map(load).to_iter_dataset()
.batch(batch_size)``: a ``grain.IterDataset`` whose every iteration visits the files in the
same order (Grain's shuffle is fixed by the seed), each element converted to the active Keras
backend's tensors on the CPU. Here the dataset is a ``grain.IterDataset`` subclass whose
iterator pulls whole batches from the core (decoded in parallel with the GIL released) and
converts each batch once. Grain's own machinery works on it: ``get_state``/``set_state``
checkpointing (restoring skips the batches before, without decoding them), ``mp_prefetch``
(through ``set_slice``: each worker process rebuilds the loader and takes its slice of the
files) and every transformation (``map``, ``prefetch``, ...).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _core
from ..batches.source import BatchSource


def _grain():
    try:
        import grain
    except ImportError as e:  # pragma: no cover - exercised only without grain
        raise ImportError('format="grain" needs Grain (pip install grain).') from e
    return grain


def grain_permutation(n: int, seed: int) -> np.ndarray:
    """The order Keras' grain path visits n files in: Grain's own ``MapDataset.shuffle``
    (its index shuffle at epoch 0), computed for the whole range at once in the core."""
    if seed < 0 or seed >= 2**32:
        raise ValueError(f"Seed must be an integer between 0 and 2**32-1 (got {seed=}).")
    return _core.index_shuffle_permutation(int(n), int(seed))


class _Converter:
    """numpy -> the active Keras backend's tensors on the CPU (the types Keras' make_batch
    gives). Without Keras installed, elements stay numpy arrays.

    A batch the core filled is handed over without a copy where the backend can wrap host
    memory (TensorFlow and JAX through DLPack, torch.from_numpy): copying a float32 batch
    costs about as much as decoding it (benchmarks/README.md, the grain section).
    The wrapping tensor keeps the numpy array, and with it the pooled buffer, alive, so the
    buffer is not reused while the tensor exists. Arrays TensorFlow cannot wrap (not
    64-byte aligned) or numpy will not export (read-only cache views) are copied.
    """

    _ALIGN = 64  # TensorFlow's (Eigen's) alignment for tensors it does not own

    def __init__(self):
        try:
            import keras
        except ImportError:
            keras = None
        self._keras = keras
        self._backend = keras.backend.backend() if keras is not None else None
        self._wrap = None
        if self._backend == "tensorflow":
            import tensorflow as tf

            self._wrap = lambda x: tf.experimental.dlpack.from_dlpack(x.__dlpack__())
        elif self._backend == "jax":
            import jax

            self._wrap = jax.dlpack.from_dlpack
        elif self._backend == "torch":
            import torch

            self._wrap = torch.from_numpy

    def __call__(self, x: np.ndarray):
        keras = self._keras
        if keras is None:
            return x
        if (
            self._wrap is not None
            and x.flags.writeable
            and x.flags.c_contiguous
            and x.ctypes.data % self._ALIGN == 0
            and x.size > 0
        ):
            return self._wrap(x)
        with keras.device("cpu"):
            return keras.ops.convert_to_tensor(x)


class GrainDataset(_grain().IterDataset):
    """``format="grain"``: a ``grain.IterDataset`` of batches (or samples) from the C++ core.

    Every iteration yields the same order (Keras' grain semantics). Elements are
    ``(images, labels)`` or ``images``, as tensors of the active Keras backend.

    Attributes:
        class_names, file_paths: as Keras sets them.
        skipped_files: files left out (``on_error="skip"``/``"warn"``), with reasons.
    """

    def __init__(self, source: BatchSource, class_names, file_paths):
        super().__init__()
        self._source = source
        self._slice: Optional[tuple] = None
        self.class_names = class_names
        # file_paths is the source's (one FilePaths over the shared index): a pickle of the
        # dataset then carries the index once, with the source.

    @property
    def file_paths(self):
        """The files, in Keras' order: a read-only sequence of paths, built when read."""
        return self._source.file_paths

    @property
    def skipped_files(self):
        return self._source.skipped

    def set_slice(self, sl: slice, sequential_slice: bool = False) -> None:
        """Restricts this dataset to a slice of its files (Grain calls it in each
        ``mp_prefetch`` worker: ``slice(worker_index, None, worker_count)``)."""
        self._slice = (sl, bool(sequential_slice))

    def _order(self, epoch: int) -> np.ndarray:
        # The worker's slice is taken before the order is widened to int64: a worker
        # holds its own part of the epoch, not the whole of it.
        if self._slice is None:
            return self._source.epoch_order(epoch)
        sl, sequential = self._slice
        if not sequential:
            return self._source.epoch_order(epoch, part=sl)
        # Grain's sequential slicing: worker i of n takes the i-th of n contiguous runs.
        grain = _grain()
        start, end = grain.sharding.even_split(
            self._source.num_samples, grain.sharding.ShardOptions(sl.start, sl.step, drop_remainder=False)
        )
        return self._source.epoch_order(epoch, part=slice(start, end))

    def __iter__(self) -> "GrainDatasetIterator":
        return GrainDatasetIterator(self)

    def crop_boxes(self, epoch: int, start_batch: int = 0) -> dict:
        """What ``random_resized_crop`` / ``random_flip`` do to each sample of the ``epoch``-th
        iteration (from batch ``start_batch`` on), in order; see
        :meth:`pyimgdir.NumpyDataset.crop_boxes`."""
        return self._source.crop_boxes(epoch, start_batch, order=self._order(epoch))

    def __str__(self) -> str:
        s = self._source
        return (
            f"pyimgdir.GrainDataset(files={len(self.file_paths)}, batch_size={s.batch_size}, "
            f"image_shape={s.sample_shape}, shuffle={s.shuffle})"
        )


class GrainDatasetIterator(_grain().DatasetIterator):
    """Iterates one pass over a :class:`GrainDataset`.

    ``get_state()`` is ``{"seed", "epoch", "batches", "shard"}`` (``batches``: elements
    returned so far); ``set_state()`` continues from such a state without decoding the
    elements before it. The same dict works as ``initial_state=`` for a new dataset.
    """

    def __init__(self, ds: GrainDataset):
        super().__init__()
        self._ds = ds
        self._source = ds._source
        self._epoch, self._done = self._source.claim_epoch()
        self._gen = None
        self._convert = _Converter()

    def _start(self):
        self._gen = self._source.iter_epoch(self._epoch, self._done, order=self._ds._order(self._epoch))

    def __next__(self):
        self._assert_not_closed()
        if self._gen is None:
            self._start()
        element = next(self._gen)
        self._done += 1
        convert = self._convert
        if isinstance(element, tuple):
            images, labels = element
            if labels.dtype.kind in "iu":
                labels = labels.astype(np.int32, copy=False)  # Keras' int labels are int32
            return convert(images), convert(labels)
        return convert(element)

    def get_state(self) -> dict[str, Any]:
        return self._source.state_at(self._epoch, self._done)

    def set_state(self, state: dict[str, Any]) -> None:
        try:
            seed, epoch, done = int(state["seed"]), int(state["epoch"]), int(state["batches"])
        except (TypeError, KeyError, ValueError):
            raise ValueError(f'A state must be {{"seed", "epoch", "batches"}}. Received: {state!r}') from None
        if seed != int(self._source.seed):
            raise ValueError(f"The state was saved with seed={seed}, but this dataset has seed={self._source.seed}.")
        if "shard" in state and [int(v) for v in state["shard"]] != [self._source.shard_index, self._source.shard_count]:
            raise ValueError(f"The state was saved for shard {tuple(state['shard'])}, not this dataset's.")
        if epoch < 0 or done < 0:
            raise ValueError(f"The state has a negative epoch or batch count: {state!r}")
        self._close_gen()
        self._epoch, self._done = epoch, done

    def _close_gen(self):
        if self._gen is not None:
            self._gen.close()  # closes the core iterator (its threads stop)
            self._gen = None

    def close(self) -> None:
        self._close_gen()
        super().close()

    def __str__(self) -> str:
        return f"pyimgdir.GrainDatasetIterator(epoch={self._epoch}, batches={self._done})"


def to_grain_dataset(source: BatchSource, class_names, file_paths) -> GrainDataset:
    if source.shuffle:
        # Keras' grain path: Grain's shuffle by seed, the same order every epoch.
        # Kept as 32-bit rows (half the memory); epoch_order widens it when an epoch starts.
        perm = grain_permutation(len(source.files), source.seed)
        source.permutation = perm.astype(np.uint32) if len(perm) < 2**32 else perm
    return GrainDataset(source, class_names, file_paths)
