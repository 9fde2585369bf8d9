"""What every benchmark loader shares: the output spec, the Loader record, the file
listing, and helpers to read a batch as a model would and to count child CPU time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclass
class Spec:
    name: str
    height: int
    width: int
    batch_size: int


SPECS = {
    "standard": Spec("standard", 224, 224, 64),
    "keras-default": Spec("keras-default", 256, 256, 32),
}


@dataclass
class Loader:
    epoch: Callable[[], Iterator[int]]
    notes: str
    threads: Optional[int] = None
    extra: Dict = field(default_factory=dict)


def list_files(directory: str) -> List[str]:
    """Class-folder files in Keras' order (sorted class folders, sorted files)."""
    out = []
    for cls in sorted(os.listdir(directory)):
        d = os.path.join(directory, cls)
        if not os.path.isdir(d):
            continue
        for root, dirs, files in os.walk(d):
            dirs.sort()
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    out.append(os.path.join(root, f))
    return out


def tf_view(x) -> np.ndarray:
    """A numpy view of a TensorFlow tensor without copying it (DLPack). The consumer of a
    tf.data pipeline is normally TensorFlow itself, which reads the tensor in place;
    `x.numpy()` would add a copy of every batch into freshly allocated memory (TensorFlow's
    EagerTensor.numpy() always copies), a cost of the consumer, not of the loader."""
    return np.from_dlpack(x)


def touch(a: np.ndarray, state: dict) -> int:
    """Reads one element (the consumer 'uses' the batch) and records the first batch's mean."""
    _ = a.reshape(-1)[0]
    if "first_batch_mean" not in state:
        state["first_batch_mean"] = float(a.mean(dtype=np.float64))
        state["batch_shape"] = list(a.shape)
        state["batch_dtype"] = str(a.dtype)
    return len(a)


# ------------------------------------------------------------------------------- Keras


def import_torchvision():
    """torchvision, through the tests' importer (tests/torchvision_ref.py), which works
    around PyPI's CUDA-built wheels on a CPU-only torch; raises when it cannot be had."""
    import sys
    from pathlib import Path

    tests = str(Path(__file__).resolve().parent.parent / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from torchvision_ref import import_torchvision as importer

    torchvision = importer()
    if torchvision is None:
        raise ImportError("torchvision is not installed (or cannot be imported) for the torchvision rows")
    return torchvision


def children_cpu_s() -> float:
    """CPU seconds used so far by this process's live children (DataLoader workers), which
    getrusage(RUSAGE_CHILDREN) does not count until they exit."""
    import psutil

    total = 0.0
    for p in psutil.Process().children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total
