"""torchvision's RandomResizedCrop sampler, the reference of the crop-box distribution.

``RandomResizedCrop.get_params`` (torchvision.transforms), written out with numpy and vectorised:
up to 10 attempts, each drawing an area fraction uniformly from ``scale`` and an aspect ratio
log-uniformly from ``ratio``, ``w = round(sqrt(area * aspect))``, ``h = round(sqrt(area /
aspect))``; the first attempt whose box fits is kept, with its top-left corner uniform over the
positions the box can take; when none fits, the largest centred box whose aspect ratio is in
``ratio``. The boxes follow torchvision's distribution exactly; the draws are numpy's (a fixed
``numpy.random.Generator``), so the reference is the same whatever else is installed.
"""

from __future__ import annotations

import numpy as np

ATTEMPTS = 10


def reference_boxes(rng: np.random.Generator, n: int, height: int, width: int, scale, ratio) -> np.ndarray:
    """``n`` boxes as torchvision draws them for a ``height`` x ``width`` image: an (n, 4)
    int64 array of (top, left, height, width)."""
    area = height * width
    log_ratio = np.log(np.asarray(ratio, dtype=np.float64))
    target_area = area * rng.uniform(scale[0], scale[1], (n, ATTEMPTS))
    aspect = np.exp(rng.uniform(log_ratio[0], log_ratio[1], (n, ATTEMPTS)))
    # np.rint rounds half to even, as Python's round() does
    w = np.rint(np.sqrt(target_area * aspect)).astype(np.int64)
    h = np.rint(np.sqrt(target_area / aspect)).astype(np.int64)
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    found = fits.any(axis=1)
    first = fits.argmax(axis=1)
    rows = np.arange(n)
    bh, bw = h[rows, first], w[rows, first]

    fh, fw = fallback_size(height, width, ratio)
    bh = np.where(found, bh, fh)
    bw = np.where(found, bw, fw)
    # uniform positions (torch.randint(0, room + 1)); the fallback is centred
    top = rng.integers(0, height - bh + 1)
    left = rng.integers(0, width - bw + 1)
    top = np.where(found, top, (height - bh) // 2)
    left = np.where(found, left, (width - bw) // 2)
    return np.stack([top, left, bh, bw], 1)


def fallback_size(height: int, width: int, ratio) -> tuple[int, int]:
    """The (height, width) of the box taken when no attempt fits: the whole image, narrowed
    to the nearer end of the ratio range."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        return int(round(width / min(ratio))), width
    if in_ratio > max(ratio):
        return height, int(round(height * max(ratio)))
    return height, width
