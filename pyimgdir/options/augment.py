"""Training input: the ``random_resized_crop`` and ``random_flip`` options and their boxes.

The core draws every sample's crop box and flips from a counter-based random stream keyed
only by ``(seed, epoch, file index)`` (``csrc/core/crop.cpp``). This module checks the
options and exposes the same draws to Python, so the boxes of any epoch can be computed
without decoding a pixel.
"""

from __future__ import annotations

import math
import numbers
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .constants import SEED_MASK

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
DEFAULT_SCALE = (0.08, 1.0)
DEFAULT_RATIO = (3.0 / 4.0, 4.0 / 3.0)


class CropSpec(NamedTuple):
    """A resolved ``random_resized_crop``: area-fraction and aspect-ratio (w/h) ranges."""

    scale: Tuple[float, float] = DEFAULT_SCALE
    ratio: Tuple[float, float] = DEFAULT_RATIO


def _pair(value, name: str) -> Tuple[float, float]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"`random_resized_crop` {name} must be a pair of numbers (min, max). Received: {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(
            f"`random_resized_crop` {name} must satisfy 0 < min <= max. Received: {tuple(value)!r}"
        )
    return (lo, hi)


def check_random_resized_crop(value) -> Optional[CropSpec]:
    """``None``/``False``: off. ``True``: torchvision's defaults. ``(scale, ratio)`` or a dict
    with ``scale`` and/or ``ratio``: those ranges."""
    if value is None or value is False:
        return None
    if value is True:
        return CropSpec()
    if isinstance(value, dict):
        unknown = set(value) - {"scale", "ratio"}
        if unknown:
            raise ValueError(
                f"`random_resized_crop` accepts the keys 'scale' and 'ratio'. Received: {sorted(unknown)}"
            )
        return CropSpec(
            _pair(value.get("scale", DEFAULT_SCALE), "scale"), _pair(value.get("ratio", DEFAULT_RATIO), "ratio")
        )
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (tuple, list)) for v in value):
        return CropSpec(_pair(value[0], "scale"), _pair(value[1], "ratio"))
    raise ValueError(
        "`random_resized_crop` must be None, False, True, (scale, ratio) with two (min, max) pairs, "
        f"or a dict with 'scale' and/or 'ratio'. Received: {value!r}"
    )


def check_random_flip(value) -> Optional[str]:
    if value is None or value is False:
        return None
    if value not in FLIP_MODES:
        raise ValueError(
            f'`random_flip` must be None, "horizontal", "vertical" or "horizontal_and_vertical". '
            f"Received: random_flip={value!r}"
        )
    return value


def seed_bits(seed) -> int:
    """The 64-bit key the core's random stream starts from (any Python int seed)."""
    return int(seed) & SEED_MASK


def crop_boxes(
    seed: int,
    epoch: int,
    file_indices: Sequence[int],
    image_sizes: Sequence[Tuple[int, int]],
    *,
    random_resized_crop=True,
    random_flip: Optional[str] = None,
) -> Dict[str, np.ndarray]:
    """The crop boxes and flips pyimgdir draws for files ``file_indices`` (indices into a
    dataset's ``file_paths``) in ``epoch``, given each image's ``(height, width)``.

    ``seed`` is the dataset's (``ds.state()["seed"]``); the options are those passed to
    :func:`image_dataset_from_directory`. Returns a dict of equal-length arrays: ``y``,
    ``x``, ``height``, ``width`` (the box in the image's pixels; the whole image when
    ``random_resized_crop`` is off) and ``flip_horizontal``, ``flip_vertical``.
    """
    crop = check_random_resized_crop(random_resized_crop)
    flip = check_random_flip(random_flip)
    sizes = np.asarray(image_sizes, dtype=np.int64).reshape(-1, 2)
    files = np.asarray(file_indices, dtype=np.int64).reshape(-1)
    config = _core.LoaderConfig()
    config.random_crop = crop is not None
    if crop is not None:
        config.crop_scale, config.crop_ratio = crop
    config.random_flip = flip or "none"
    config.augment_seed = seed_bits(seed)
    return _core.draw_augments(
        config, int(epoch), files, np.ascontiguousarray(sizes[:, 0]), np.ascontiguousarray(sizes[:, 1])
    )
