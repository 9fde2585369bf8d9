"""The README's short tour, offline: numpy batches, training crops, a URL directory
(``memory://``, fsspec's in-memory filesystem) and resuming with ``state()``.

    python examples/tour.py [DIR]

DIR holds one sub-folder per class; without it a small sample is generated in a temporary
directory. Nothing is downloaded and TensorFlow is not imported.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

import pyimgdir
from pyimgdir.sample import make_sample


def numpy_batches(root) -> None:
    ds = pyimgdir.image_dataset_from_directory(root, image_size=(64, 64), batch_size=16, seed=1,
                                               format="numpy", verbose=False)
    images, labels = next(iter(ds))
    print(f"numpy: {len(ds.file_paths)} files, classes {ds.class_names}; "
          f"first batch {images.shape} {images.dtype}, labels {labels[:8].tolist()}")


def training_crops(root) -> None:
    ds = pyimgdir.image_dataset_from_directory(root, image_size=(48, 48), batch_size=16, seed=7,
                                               format="numpy", verbose=False,
                                               random_resized_crop=True, random_flip="horizontal")
    boxes = ds.crop_boxes(0)  # what every sample of epoch 0 gets, read from the headers
    first, again = next(iter(ds.epoch(0)))[0], next(iter(ds.epoch(0)))[0]
    print(f"crops: first box (y, x, h, w) = {int(boxes['y'][0])}, {int(boxes['x'][0])}, "
          f"{int(boxes['height'][0])}, {int(boxes['width'][0])}; "
          f"flipped left-right: {int(boxes['flip_horizontal'].sum())} of {len(boxes['y'])}; "
          f"epoch 0 twice identical: {np.array_equal(first, again)}")


def url_directory(root) -> None:
    try:
        import fsspec
    except ImportError:
        print('url: fsspec is not installed (pip install "pyimgdir[cloud]"); skipped')
        return
    fs = fsspec.filesystem("memory")
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            fs.pipe("/tour/" + path.relative_to(root).as_posix(), path.read_bytes())
    local = pyimgdir.image_dataset_from_directory(root, image_size=(32, 32), shuffle=False,
                                                  format="numpy", verbose=False)
    remote = pyimgdir.image_dataset_from_directory("memory://tour", image_size=(32, 32), shuffle=False,
                                                   format="numpy", verbose=False)
    a_batches, b_batches = list(local), list(remote)
    same = len(a_batches) == len(b_batches) and all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(a_batches, b_batches))
    print(f"url: memory://tour lists {len(remote.file_paths)} files, e.g. {remote.file_paths[0]}; "
          f"same batches as the local folder: {same}")
    fs.rm("/tour", recursive=True)


def resuming(root) -> None:
    kw = dict(image_size=(32, 32), batch_size=8, seed=3, format="numpy", verbose=False)
    ds = pyimgdir.image_dataset_from_directory(root, **kw)
    it = iter(ds)
    next(it)
    next(it)
    state = ds.state()
    expected = next(it)[0]
    resumed = pyimgdir.image_dataset_from_directory(root, initial_state=state, **kw)
    got = next(iter(resumed))[0]
    print(f"resume: state {state}; the resumed dataset's first batch is the 3rd: "
          f"{np.array_equal(expected, got)}")


def main() -> int:
    if len(sys.argv) > 1:
        root = Path(sys.argv[1])
    else:
        root = make_sample(Path(tempfile.mkdtemp()) / "sample", classes=3, per_class=12, size_range=(60, 120))
    numpy_batches(root)
    training_crops(root)
    url_directory(root)
    resuming(root)
    print("TensorFlow imported:", "tensorflow" in sys.modules)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
