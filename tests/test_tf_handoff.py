"""format="tf": batches reach TensorFlow without a copy (the tensors share pyimgdir's pooled
batch buffers), and a batch the caller keeps is never overwritten by later batches."""

from __future__ import annotations

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image, zip_strict

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    rng = np.random.default_rng(21)
    root = tmp_path_factory.mktemp("tfh") / "data"
    for i in range(40):
        write_image(root / f"c{i % 3}" / f"{i:02d}.jpg", photo_like(rng, 30 + i, 50 - i // 2))
    return root


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_batches_reach_tensorflow_without_a_copy(tree, monkeypatch, dtype):
    from pyimgdir.batches.source import BatchSource

    handed = []  # addresses of the numpy batches the source gives to TensorFlow
    real = BatchSource.iter_epoch

    def recording(self, *a, **kw):
        for el in real(self, *a, **kw):
            handed.append(el[0].ctypes.data)
            yield el

    monkeypatch.setattr(BatchSource, "iter_epoch", recording)
    ds = pyimgdir.image_dataset_from_directory(tree, image_size=(64, 64), batch_size=8, shuffle=False,
                                               verbose=False, dtype=dtype)
    got = [np.from_dlpack(x).ctypes.data for x, _ in ds]  # the tensors' own memory, no copy made here
    assert len(got) == 5 and got == handed


def test_kept_tensors_are_never_overwritten(tree):
    ds = pyimgdir.image_dataset_from_directory(tree, image_size=(32, 32), batch_size=8, shuffle=True, seed=3,
                                               verbose=False)
    kept = [x for x, _ in ds]                      # hold every tensor of the first epoch
    copies = [x.numpy() for x in kept]             # .numpy() copies
    for _ in range(3):                             # later epochs reuse pooled buffers
        for x, _ in ds:
            pass
    for k, c in zip_strict(kept, copies):
        np.testing.assert_array_equal(np.from_dlpack(k), c)
