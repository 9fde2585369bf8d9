"""torchvision's RandomResizedCrop sampler, as the reference for the crop-box distribution.

torchvision is imported when it is installed. PyPI's torchvision wheels are CUDA builds whose
compiled detection ops cannot load against a CPU-only torch; importing the package then
fails while it registers fake kernels for two of those ops (``torchvision::nms`` and
``qnms``). Declaring the two schemas first lets the pure-Python parts (transforms,
datasets) import; nothing here uses the compiled ops. Without torchvision, the sampler is
torchvision's published ``RandomResizedCrop.get_params`` algorithm, written out below with
torch's RNG (or numpy's when torch is missing too).
"""

from __future__ import annotations

import math


def import_torchvision():
    """torchvision, or None when it is not installed or cannot be imported."""
    try:
        import torch
    except ImportError:
        return None
    try:
        import torchvision

        return torchvision
    except ImportError:
        return None
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for op in ("nms", "qnms"):
        try:
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass  # already defined
    import sys

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    try:
        import torchvision

        return torchvision
    except (ImportError, RuntimeError):
        return None


def reference_sampler(seed: int):
    """A function (height, width, scale, ratio) -> (i, j, h, w) drawing boxes as torchvision
    does, and a string naming which implementation it is."""
    tv = import_torchvision()
    if tv is not None:
        import torch

        torch.manual_seed(seed)  # get_params draws from torch's global generator
        from torchvision.transforms import RandomResizedCrop

        def draw(height, width, scale, ratio):
            return RandomResizedCrop.get_params(torch.empty(1, height, width), list(scale), list(ratio))

        return draw, f"torchvision {tv.__version__}"
    try:
        import torch

        torch.manual_seed(seed)

        def uniform(a, b):
            return torch.empty(1).uniform_(a, b).item()

        def randint(n):
            return int(torch.randint(0, n, size=(1,)).item())

        log = lambda r: torch.log(torch.tensor(r)).tolist()  # noqa: E731
        name = "torchvision's get_params written out, torch RNG"
    except ImportError:
        import numpy as np

        rng = np.random.default_rng(seed)
        uniform = lambda a, b: float(rng.uniform(a, b))  # noqa: E731
        randint = lambda n: int(rng.integers(0, n))  # noqa: E731
        log = lambda r: [math.log(v) for v in r]  # noqa: E731
        name = "torchvision's get_params written out, numpy RNG"

    def draw(height, width, scale, ratio):
        area = height * width
        log_ratio = log(ratio)
        for _ in range(10):
            target_area = area * uniform(scale[0], scale[1])
            aspect_ratio = math.exp(uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                return randint(height - h + 1), randint(width - w + 1), h, w
        in_ratio = float(width) / float(height)
        if in_ratio < min(ratio):
            w = width
            h = int(round(w / min(ratio)))
        elif in_ratio > max(ratio):
            h = height
            w = int(round(h * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    return draw, name
