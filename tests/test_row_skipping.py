"""Large downscales skip the JPEG rows the resize never reads. The rows that are read must
come out exactly as in a full decode, so the output still equals TensorFlow's."""

from __future__ import annotations

import numpy as np
import pytest

import pyimgdir
from conftest import photo_like, write_image

VARIANTS = [
    dict(quality=90),                     # 4:2:0
    dict(quality=85, subsampling=1),      # 4:2:2
    dict(quality=92, subsampling=0),      # 4:4:4
    dict(quality=80, progressive=True),
]


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    rng = np.random.default_rng(31)
    root = tmp_path_factory.mktemp("big") / "data"
    for i, v in enumerate(VARIANTS):
        write_image(root / "c" / f"{i}.jpg", photo_like(rng, 1013 - 40 * i, 757 + 33 * i), **v)
    write_image(root / "c" / "gray.jpg", photo_like(rng, 900, 641)[:, :, :1], quality=88)
    return root


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize(
    "fit", [{}, dict(crop_to_aspect_ratio=True), dict(pad_to_aspect_ratio=True)], ids=["stretch", "crop", "pad"]
)
@pytest.mark.parametrize("size", [(48, 40), (97, 131)])
def test_downscale_matches_tensorflow(tf, keras, big_tree, interpolation, fit, size):
    kw = dict(image_size=size, shuffle=False, verbose=False, interpolation=interpolation, labels=None, **fit)
    ref = np.concatenate(list(keras.utils.image_dataset_from_directory(big_tree, **kw).as_numpy_iterator()))
    got = np.concatenate(list(pyimgdir.image_dataset_from_directory(big_tree, format="numpy", **kw)))
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)
