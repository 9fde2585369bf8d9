"""``format="numpy"``: the batch source's epochs as numpy batches, no TensorFlow needed."""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from ..batches.source import BatchSource
from ..errors import SkippedFile


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
        # file_paths is the source's (one FilePaths over the shared index): a pickle of the
        # dataset then carries the index once, with the source.

    @property
    def file_paths(self):
        """The files, in Keras' order: a read-only sequence of paths, built when read."""
        return self._source.file_paths

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

    def epoch(self, epoch: int, start_batch: int = 0):
        """Iterates one given epoch (its order depends only on the seed and ``epoch``),
        optionally from batch ``start_batch`` on (earlier batches are not decoded)."""
        return self._source.iter_epoch(epoch, start_batch)

    def set_epoch(self, epoch: int) -> None:
        """Makes the next ``iter()`` run epoch ``epoch`` (like DistributedSampler.set_epoch)."""
        self._source.set_epoch(epoch)

    def crop_boxes(self, epoch: int, start_batch: int = 0) -> dict:
        """What ``random_resized_crop`` / ``random_flip`` do to each sample of ``epoch`` (from
        batch ``start_batch`` on), in the epoch's order: a dict of arrays ``file_index`` (into
        ``file_paths``), ``y``, ``x``, ``height``, ``width`` (the crop box in the image's own
        pixels; the whole image without ``random_resized_crop``), ``flip_horizontal``,
        ``flip_vertical``, ``image_height``, ``image_width``. Read from the files' headers,
        without decoding (a file whose header cannot be read raises, naming it)."""
        return self._source.crop_boxes(epoch, start_batch)

    def state(self) -> dict:
        """The position of the next batch: ``{"seed", "epoch", "batches", "shard"}``. Pass it
        as ``initial_state=`` to a new dataset (same arguments) to continue exactly there."""
        return self._source.state()

    @property
    def shard(self) -> Tuple[int, int]:
        return (self._source.shard_index, self._source.shard_count)

    def __repr__(self) -> str:
        return (
            f"NumpyDataset(files={len(self.file_paths)}, batches={len(self)}, "
            f"image_shape={self.image_shape}, dtype={self.dtype})"
        )
